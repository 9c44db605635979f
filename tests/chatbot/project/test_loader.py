from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project import check_project, load_project

from .conftest import ProjectMaker


def test_loads_a_rasa_layout(make_project: ProjectMaker) -> None:
    root = make_project(
        {
            "data/rules.yaml": """\
                rules:
                - rule: bye
                  steps:
                  - intent: greet
                  - action: utter_greet
                """,
            "data/sub/more.yml": """\
                nlu:
                - intent: inform
                  examples: |
                    - I live in [Paris](city)
                """,
            "tests/test_stories.yml": """\
                nlu:
                - intent: ignored
                  examples: |
                    - whatever
                stories:
                - story: test greet
                  steps:
                  - user: hi
                    intent: greet
                  - action: utter_greet
                """,
            "tests/not_a_test.yml": "stories: [oops]\n",
            "config.yml": "language: en\npipeline:\n  - name: WhitespaceTokenizer\n",
            "endpoints.yml": "action_endpoint:\n  url: http://localhost:5055/webhook\n",
            "credentials.yml": "rest:\n",
        }
    )
    project = load_project(root)
    assert project.root == root
    assert set(project.domain.intents) == {"greet", "inform", "faq"}
    assert [s.name for s in project.stories] == ["greet"]
    assert sorted(r.name for r in project.rules) == ["bye", "faq"]
    assert [s.name for s in project.test_stories] == ["test greet"]
    assert project.test_stories[0].kind == "test"
    assert {e.intent for e in project.nlu.examples} == {"greet", "faq/ask_name", "inform"}
    assert project.config.pipeline[0].name == "WhitespaceTokenizer"
    assert project.endpoints.action_endpoint is not None
    assert "rest" in project.credentials.channels


def test_optional_files_may_be_missing(make_project: ProjectMaker) -> None:
    project = load_project(make_project())
    assert project.config.pipeline == ()
    assert project.endpoints.blocks == {}
    assert project.credentials.channels == {}
    assert project.test_stories == []


def test_domain_folder(make_project: ProjectMaker) -> None:
    root = make_project(
        {
            "domain.yml": None,
            "domain/intents.yml": "intents: [greet, inform, faq]\nentities: [city]\n",
            "domain/responses.yml": """\
                responses:
                  utter_greet:
                    - text: hi
                """,
        },
        base=False,
    )
    project = load_project(root)
    assert set(project.domain.responses) == {"utter_greet"}
    assert len(project.domain.files) == 2


def test_responses_in_data_files_join_the_domain(make_project: ProjectMaker) -> None:
    root = make_project(
        {
            "data/faq.yml": """\
                nlu:
                - intent: faq/ask_age
                  examples: |
                    - how old are you
                responses:
                  utter_faq/ask_age:
                    - text: I am new.
                """
        }
    )
    project = load_project(root)
    assert "utter_faq/ask_age" in project.domain.responses
    assert "utter_faq/ask_name" in project.domain.responses
    _, errors = check_project(root)
    assert errors == []


def test_missing_domain_names_the_path(make_project: ProjectMaker) -> None:
    root = make_project({"domain.yml": None})
    with pytest.raises(ProjectErrors) as info:
        load_project(root)
    assert str(root / "domain.yml") in str(info.value)
    assert "no domain found" in str(info.value)


def test_explicit_paths(make_project: ProjectMaker, tmp_path: Path) -> None:
    root = make_project()
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "d.yml").write_text("intents: [greet]\nresponses:\n  utter_greet:\n    - text: hi\n")
    (other / "s.yml").write_text(
        "stories:\n- story: s\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    )
    project = load_project(root, domain=other / "d.yml", data=[other / "s.yml"])
    assert set(project.domain.intents) == {"greet"}
    assert [s.name for s in project.stories] == ["s"]
    assert project.nlu.examples == []
    with pytest.raises(ProjectErrors) as info:
        load_project(
            root, domain=other / "nope.yml", data=other / "nothing", config=other / "c.yml"
        )
    text = str(info.value)
    assert "nope.yml" in text and "nothing" in text and "c.yml: file not found" in text


def test_all_errors_across_files_are_collected(make_project: ProjectMaker) -> None:
    root = make_project(
        {
            "domain.yml": """\
                intents: [greet]
                slots:
                  city:
                    type: city
                """,
            "data/nlu.yml": "nlu:\n- intent: greet\n  examples: |\n    - [x]{e}\n",
            "data/stories.yml": "stories:\n- story: s\n  steps:\n  - intnet: greet\n",
            "data/broken.yml": "rules: [\n",
            "tests/test_x.yml": "stories:\n- story: t\n  steps:\n  - bot: 3\n",
            "config.yml": "pipeline:\n  - epochs: 1\n",
            "endpoints.yml": "models:\n  url: ${}\n",
        },
    )
    with pytest.raises(ProjectErrors) as info:
        load_project(root)
    places = sorted(f"{Path(e.file or '').name}:{e.line}" for e in info.value.errors)
    assert places == [
        "broken.yml:2",
        "config.yml:2",
        "domain.yml:4",
        "endpoints.yml:2",
        "nlu.yml:4",
        "stories.yml:4",
        "test_x.yml:4",
    ]


def test_unknown_key_in_a_data_file(make_project: ProjectMaker) -> None:
    root = make_project({"data/nlu.yml": "nlu: []\nstoris: []\n"})
    with pytest.raises(ProjectErrors) as info:
        load_project(root)
    assert "nlu.yml:2: unknown key in a training data file (key 'storis')" in str(info.value)


def test_markdown_training_data_is_named_not_lost_silently(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa 3 reads YAML only; Rasa 1/2 Markdown files left in data/ are each named in a
    warning (a README beside them is not)."""
    root = make_project(
        {
            "data/old_nlu.md": "## intent:greet\n- hey\n",
            "data/core/old_stories.md": "## happy\n* greet\n  - utter_greet\n",
            "data/README.md": "# Data\n\n* nlu.yml: examples\n* stories.yml: stories\n",
        }
    )
    with caplog.at_level(logging.WARNING, logger="chatbot.project.loader"):
        project = load_project(root)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2, warned
    assert warned[0].startswith(str(root / "data" / "core" / "old_stories.md"))
    assert warned[1].startswith(str(root / "data" / "old_nlu.md"))
    assert "Markdown training data (Rasa 1 and 2) is not read" in warned[0]
    assert project.nlu.examples  # the YAML data is read as before


def test_files_without_training_data_are_skipped(make_project: ProjectMaker) -> None:
    root = make_project({"data/other.yml": "something: else\n", "data/empty.yml": ""})
    load_project(root)


def test_check_project_reports_parse_and_semantic_errors(make_project: ProjectMaker) -> None:
    root = make_project(
        {
            "data/bad.yml": "stories: [\n",
            "data/stories.yml": """\
                stories:
                - story: s
                  steps:
                  - intent: gret
                  - action: utter_greet
                """,
        }
    )
    project, errors = check_project(root)
    assert project is None
    messages = [str(e) for e in errors]
    assert any("bad.yml:2: YAML syntax error" in m for m in messages)
    assert any("stories.yml:4: intent 'gret' is not in the domain" in m for m in messages)


def test_check_project_stops_at_domain_errors(make_project: ProjectMaker) -> None:
    root = make_project({"domain.yml": "intents: [greet\n"})
    project, errors = check_project(root)
    assert project is None
    assert len(errors) == 1 and "domain.yml:2" in str(errors[0])


def test_check_project_clean(make_project: ProjectMaker) -> None:
    project, errors = check_project(make_project())
    assert errors == []
    assert project is not None


def test_a_large_project_loads_whole(make_project: ProjectMaker) -> None:
    """Thousands of examples and hundreds of stories are all read. How fast is measured by
    ``training/benchmarks/large_project.py`` (its validate step), not asserted here: a timed
    test fails on a slow or busy machine."""
    many_examples = "".join(f"    - example number {i} in [Berlin](city)\n" for i in range(2000))
    many_stories = "".join(
        f"- story: s{i}\n  steps:\n  - intent: greet\n  - action: utter_greet\n" for i in range(300)
    )
    root = make_project(
        {
            "data/big_nlu.yml": f"nlu:\n- intent: inform\n  examples: |\n{many_examples}",
            "data/big_stories.yml": f"stories:\n{many_stories}",
        }
    )
    project, errors = check_project(root)
    assert errors == [] and project is not None
    assert sum(example.intent == "inform" for example in project.nlu.examples) == 2000
    assert {f"s{i}" for i in range(300)} <= {story.name for story in project.stories}


def test_files_of_an_older_format_version_are_read_with_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As Rasa: a `version: "2.0"` file is read as a Rasa 3 file, and said so (a line of
    information: `--fail-on-warnings` passes it, as Rasa's)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "domain.yml").write_text('version: "2.0"\nintents: [greet]\n')
    (tmp_path / "data" / "nlu.yml").write_text(
        'version: "2.0"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n'
    )
    (tmp_path / "data" / "rules.yml").write_text('version: "3.1"\nrules: []\n')
    with caplog.at_level(logging.INFO, logger="chatbot.project"):
        project = load_project(tmp_path)
    assert [e.text for e in project.nlu.examples] == ["hi"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    warned = [r.getMessage() for r in caplog.records if "format version" in r.getMessage()]
    assert len(warned) == 2, warned
    assert any("domain.yml:1: format version '2.0'" in w for w in warned)
    assert any("nlu.yml:1: format version '2.0'" in w for w in warned)


def test_an_unset_variable_in_endpoints_or_credentials_does_not_stop_training(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI build has no secrets (Rasa's train and data validate read neither file): one
    warning line each; the server still refuses to start without them (its own reading)."""
    monkeypatch.delenv("ACTION_TOKEN", raising=False)
    (tmp_path / "domain.yml").write_text("intents: [greet]\n")
    (tmp_path / "endpoints.yml").write_text(
        "action_endpoint:\n  url: http://localhost:5055/webhook\n  token: ${ACTION_TOKEN}\n"
    )
    (tmp_path / "credentials.yml").write_text("slack:\n  slack_token: ${SLACK_TOKEN}\n")
    with caplog.at_level(logging.WARNING):
        project, errors = check_project(tmp_path)
    assert project is not None and errors == []
    warned = [r.getMessage() for r in caplog.records if "is not set" in r.getMessage()]
    assert len(warned) == 2 and all("needed when the bot runs" in w for w in warned)
    assert "endpoints.yml:3:" in warned[0] or "endpoints.yml:3:" in warned[1]


def test_other_top_level_keys_of_a_data_file_are_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's schemas let them through, unread (a community bot wrote `regex:` beside `nlu:`);
    a misspelling of ours (`storis`) stays an error (test above)."""
    root = make_project(
        {"data/nlu.yml": "nlu:\n- intent: greet\n  examples: |\n    - hi\nregex:\n- regex: x\n"}
    )
    with caplog.at_level(logging.WARNING):
        project = load_project(root)
    assert [e.text for e in project.nlu.examples] == ["hi"]
    assert any(
        "nlu.yml:5: unknown key in a training data file (key 'regex')" in r.getMessage()
        for r in caplog.records
    )
