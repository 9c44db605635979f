from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.errors import ProjectError
from chatbot.project import check_project

from .conftest import DOMAIN, ProjectMaker


def _errors(make_project: ProjectMaker, files: dict[str, str | None]) -> list[ProjectError]:
    project, errors = check_project(make_project(files))
    assert project is not None, [str(e) for e in errors]
    return errors


def _story(*steps: str) -> str:
    body = "".join(f"  {line}\n" for step in steps for line in step.splitlines())
    return f"stories:\n- story: s\n  steps:\n{body}"


@pytest.mark.parametrize(
    ("steps", "line", "needles"),
    [
        (
            ["- intent: greetings"],
            4,
            ["intent 'greetings' is not in the domain", "(key 'intent', value 'greetings')"],
        ),
        (
            ["- action: utter_greeting"],
            4,
            ["response 'utter_greeting' is not in the domain", "Did you mean 'utter_greet'?"],
        ),
        (
            ["- action: action_chek"],
            4,
            ["action 'action_chek' is not in the domain's actions", "Did you mean 'action_check'?"],
        ),
        (
            ["- action: something_else"],
            4,
            ["action 'something_else' is not in the domain's actions"],
        ),
        (
            ["- active_loop: ordr_form"],
            4,
            ["form 'ordr_form' is not in the domain", "Did you mean 'order_form'?"],
        ),
        (
            ["- or:\n  - intent: greet\n  - intent: bye"],
            6,
            ["intent 'bye' is not in the domain"],
        ),
    ],
)
def test_story_using_unknown_names(
    make_project: ProjectMaker, steps: list[str], line: int, needles: list[str]
) -> None:
    errors = _errors(make_project, {"data/stories.yml": _story(*steps)})
    assert len(errors) == 1, [str(e) for e in errors]
    text = str(errors[0])
    assert f"stories.yml:{line}:" in text
    for needle in needles:
        assert needle in text


def test_known_names_pass(make_project: ProjectMaker, caplog: pytest.LogCaptureFixture) -> None:
    story = _story(
        "- intent: greet",
        "- action: utter_greet",
        "- action: order_form",
        "- active_loop: order_form",
        "- slot_was_set:\n  - requested_slot: size\n  - size: Small\n  - city",
        "- slot_was_set:\n  - size: __other__",  # Rasa's every categorical slot has it
        "- intent: nlu_fallback",
        "- action: action_default_fallback",
        "- action: utter_faq",
        "- intent: faq",
        "- action: action_check",
        "- bot: anything at all",
        "- active_loop: null",
    )
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        assert _errors(make_project, {"data/stories.yml": story}) == []
    assert not [r for r in caplog.records if "stories.yml" in r.getMessage()], caplog.text


def test_rules_and_test_stories_are_checked(make_project: ProjectMaker) -> None:
    errors = _errors(
        make_project,
        {
            "data/rules.yml": """\
                rules:
                - rule: r
                  condition:
                  - active_loop: nope_form
                  steps:
                  - intent: greet
                  - action: utter_greet
                """,
            "tests/test_stories.yml": _story("- user: hello\n  intent: hallo"),
        },
    )
    assert [(e.file.rsplit("/", 1)[-1] if e.file else None, e.line) for e in errors] == [
        ("rules.yml", 4),
        ("test_stories.yml", 4),
    ]


def _domain_errors(make_project: ProjectMaker, extra: str, replace: str | None = None) -> list[str]:
    domain = DOMAIN if replace is None else DOMAIN.replace(replace, "")
    return [str(e) for e in _errors(make_project, {"domain.yml": domain + extra})]


def test_response_template_naming_no_slot_is_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """A custom action may pass the value (``utter_message(response=..., total=...)``, as
    Rasa's financial-demo does), which Rasa does not check: a warning, and the project trains."""
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(
            make_project,
            {
                "domain.yml": DOMAIN.replace(
                    'utter_greet:\n    - text: "Hello {city}!"',
                    'utter_greet:\n    - text: "Hello {citty}! {{literal}} {size}"\n'
                    "      buttons:\n        - title: Go\n"
                    '          payload: \'/inform{"city": "x"}\'\n'
                    "    - text: '{person} {citty}'\n      channel: slack",
                )
            },
        )
    assert errors == []
    texts = [r.getMessage() for r in caplog.records if "fills in" in r.getMessage()]
    assert len(texts) == 2, texts  # {citty} once, however often it is written
    assert "domain.yml:26:" in texts[0]
    assert "response 'utter_greet' fills in '{citty}', which is not a slot" in texts[0]
    assert "only an action that passes citty=... can fill it" in texts[0]
    assert "Did you mean 'city'?" in texts[0]
    assert "'{person}'" in texts[1] and "Did you mean" not in texts[1]


def test_mapping_intents_not_in_the_domain_are_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa warns too (financial-demo's mappings name its forms as intents)."""
    domain = DOMAIN.replace("entity: city", "entity: city\n        intent: [inform, ask]", 1)
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(make_project, {"domain.yml": domain})
    assert errors == []
    texts = [r.getMessage() for r in caplog.records]
    assert any("intent 'ask' in a mapping of slot 'city' is not in the domain" in t for t in texts)


def test_intents_no_example_has_are_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """As Rasa's validator: such an intent comes only from a /payload."""
    domain = DOMAIN.replace("  - inform\n", "  - inform\n  - ask_weather\n", 1)
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(make_project, {"domain.yml": domain})
    assert errors == []
    texts = [r.getMessage() for r in caplog.records if "no NLU example has it" in r.getMessage()]
    # greet has examples, faq has faq/ask_name's; inform (in the base project) has none either
    assert sorted(t.split("'")[1] for t in texts) == ["ask_weather", "inform"], texts
    assert all("domain.yml:" in t for t in texts)


def test_response_condition_naming_unknown_slot(make_project: ProjectMaker) -> None:
    domain = DOMAIN.replace(
        "responses:\n",
        "responses:\n  utter_bye:\n    - text: bye\n      condition:\n        - type: slot\n"
        "          name: logged_in\n          value: true\n",
    )
    [error] = _errors(make_project, {"domain.yml": domain})
    assert "domain.yml:26:" in str(error)
    assert "slot 'logged_in' in a condition of 'utter_bye' is not in the domain" in str(error)
    assert "(key 'condition', value 'logged_in')" in str(error)


@pytest.mark.parametrize(
    ("domain_change", "needles"),
    [
        (
            ("required_slots:\n      - size", "required_slots:\n      - size\n      - colour"),
            ["slot 'colour' required by form 'order_form' is not in the domain"],
        ),
        (
            (
                "required_slots:\n      - size",
                "required_slots:\n      - size\n    ignored_intents: [chat]",
            ),
            ["intent 'chat' ignored by form 'order_form' is not in the domain"],
        ),
    ],
)
def test_form_errors(
    make_project: ProjectMaker, domain_change: tuple[str, str], needles: list[str]
) -> None:
    old, new = domain_change
    assert old in DOMAIN
    errors = [str(e) for e in _errors(make_project, {"domain.yml": DOMAIN.replace(old, new)})]
    assert len(errors) == 1, errors
    assert "domain.yml:" in errors[0]
    for needle in needles:
        assert needle in errors[0]


@pytest.mark.parametrize(
    ("ask", "kind"),
    [
        ("utter_ask_order_form_size", "responses"),
        ("action_ask_size", "actions"),
        ("action_ask_order_form_size", "actions"),
    ],
)
def test_form_slot_can_be_asked_in_other_ways(
    make_project: ProjectMaker, ask: str, kind: str
) -> None:
    domain = DOMAIN.replace('  utter_ask_size:\n    - text: "Which size?"\n', "")
    if kind == "responses":
        domain = domain.replace("responses:\n", f"responses:\n  {ask}:\n    - text: Size?\n")
    else:
        domain = domain.replace("actions:\n", f"actions:\n  - {ask}\n")
    assert _errors(make_project, {"domain.yml": domain}) == []


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("active_loop: order_form", "active_loop: other_form", "form 'other_form' is not in"),
        ("requested_slot: size", "requested_slot: sise", "slot 'sise' in a mapping of slot 'size'"),
        (
            "- type: from_text",
            "- type: custom\n        action: action_fill",
            "action 'action_fill' is not in the domain's actions",
        ),
    ],
)
def test_slot_mapping_errors(make_project: ProjectMaker, old: str, new: str, needle: str) -> None:
    assert old in DOMAIN
    domain = DOMAIN.replace(old, new, 1)
    errors = [str(e) for e in _errors(make_project, {"domain.yml": domain})]
    assert len(errors) == 1, errors
    assert needle in errors[0]
    assert "domain.yml:" in errors[0]


@pytest.mark.parametrize(
    ("file", "old", "new", "needles"),
    [
        (
            "domain.yml",
            "actions:\n",
            "actions:\n  - utter_missing\n",
            ["'utter_missing' is listed in actions but has no response"],
        ),
        (
            "domain.yml",
            '  utter_ask_size:\n    - text: "Which size?"\n',
            "",
            ["form 'order_form' cannot ask for slot 'size'", "utter_ask_size"],
        ),
        (
            "domain.yml",
            "entity: city",
            "entity: town",
            ["entity 'town' in a mapping of slot 'city' is not in the domain"],
        ),
        (
            "domain.yml",
            "entity: city",
            "entity: name\n        role: middle",
            ["role 'middle' is not declared for entity 'name'"],
        ),
        (
            "data/stories.yml",
            None,
            _story("- intent: inform\n  entities:\n  - town: Berlin"),
            ["stories.yml:4:", "entity 'town' is not in the domain", "(key 'entities'"],
        ),
        (
            "data/stories.yml",
            None,
            _story("- user: hi [Ann](person)\n  intent: greet"),
            ["stories.yml:4:", "entity 'person' is not in the domain"],
        ),
        (
            "data/stories.yml",
            None,
            _story("- intent: greet", "- slot_was_set:\n  - size"),
            [
                "stories.yml:5:",
                "Slot 'size' was referenced by its name only. As slot 'size' is of type "
                "'categorical' you need to specify a value for it",
            ],
        ),
        (
            "data/stories.yml",
            None,
            _story("- intent: greet", "- slot_was_set:\n  - size: huge"),
            [
                "stories.yml:5:",
                "value 'huge' of categorical slot 'size' is not one of its values: it reads as "
                "'__other__', as in Rasa",
                "small, large",
            ],
        ),
    ],
)
def test_what_rasas_validator_lets_through_is_a_warning(
    make_project: ProjectMaker,
    caplog: pytest.LogCaptureFixture,
    file: str,
    old: str | None,
    new: str,
    needles: list[str],
) -> None:
    """Rasa's own test domains hold such things (default_with_slots.yml's form has no
    utter_ask_): a warning each, and the project trains."""
    text = new if old is None else DOMAIN.replace(old, new, 1)
    assert old is None or old in DOMAIN
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        assert _errors(make_project, {file: text}) == []
    warned = [r.getMessage() for r in caplog.records]
    assert any(all(n in w for n in needles) for w in warned), warned


@pytest.mark.parametrize(
    ("declaration", "warned"),
    [
        ("type: bool", True),
        ("type: bool\n    influence_conversation: false", False),  # no features: no warning
        ("type: text", False),  # a text slot named alone is set to some value
    ],
)
def test_a_slot_named_without_a_value_in_a_story(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture, declaration: str, warned: bool
) -> None:
    """Rasa's story reader: a name without a value sets a text or list slot to some value; a
    slot of another type that influences the conversation reads as unset, with its warning."""
    domain = DOMAIN.replace("slots:\n", f"slots:\n  vip:\n    {declaration}\n    mappings: []\n", 1)
    stories = _story("- intent: greet", "- slot_was_set:\n  - vip")
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        assert _errors(make_project, {"domain.yml": domain, "data/stories.yml": stories}) == []
    found = [r.getMessage() for r in caplog.records if "'vip'" in r.getMessage()]
    expected = (
        "stories.yml:5: Slot 'vip' was referenced by its name only. As slot 'vip' is of type "
        "'bool' you need to specify a value for it. Slot 'vip' will be treated as if it's value "
        "is empty"
    )
    assert [expected in m for m in found] == ([True] if warned else []), found


def test_responses_left_to_an_nlg_server_are_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """An ``utter_`` action listed in ``actions`` without a response, or a response without
    variations, is an NLG server's (Rasa's check_missing_responses warns): stories may use it
    and the project trains. One neither listed nor a response stays an error."""
    domain = DOMAIN.replace("actions:\n", "actions:\n  - utter_remote\n", 1).replace(
        "responses:\n", "responses:\n  utter_silent: []\n", 1
    )
    story = _story("- intent: greet", "- action: utter_remote", "- action: utter_silent")
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        assert _errors(make_project, {"domain.yml": domain, "data/stories.yml": story}) == []
    warned = [r.getMessage() for r in caplog.records]
    assert any("'utter_remote' is listed in actions but has no response" in w for w in warned)
    assert any("response 'utter_silent' has no variations" in w for w in warned), warned
    unknown = _story("- intent: greet", "- action: utter_elsewhere")
    errors = _errors(make_project, {"domain.yml": domain, "data/stories.yml": unknown})
    assert ["response 'utter_elsewhere' is not in the domain" in str(e) for e in errors] == [True]


def test_use_entities_naming_unknown_entity(make_project: ProjectMaker) -> None:
    domain = DOMAIN.replace("  - inform\n", "  - inform:\n      use_entities: [town]\n")
    errors = [str(e) for e in _errors(make_project, {"domain.yml": domain})]
    assert len(errors) == 1 and "entity 'town' used by intent 'inform'" in errors[0]


def test_nlu_intent_and_entity_not_in_domain_are_warnings(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """As in Rasa 3: the project trains (the NLU model learns them), each name is warned about
    once, at its first use, with file and line."""
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(
            make_project,
            {
                "data/more_nlu.yml": """\
                nlu:
                - intent: goodbye
                  examples: |
                    - bye
                    - see you
                - intent: inform
                  examples: |
                    - I am [Ann](person)
                - intent: chitchat/weather
                  examples: |
                    - how is the weather
                """
            },
        )
    assert errors == []
    texts = [r.getMessage() for r in caplog.records]
    assert len(texts) == 4, texts  # one warning per unknown name, at its first use
    assert (
        "more_nlu.yml:4: intent 'goodbye' of an NLU example is not in the domain: the NLU model"
        in texts[0]
    )
    assert "more_nlu.yml:8: entity 'person' of an NLU example" in texts[1]
    assert "more_nlu.yml:11: intent 'chitchat/weather'" in texts[2]
    # and it has no response utter_chitchat/weather (the retrieval check's own warning)
    assert "more_nlu.yml:11: retrieval intent 'chitchat/weather' has NLU examples" in texts[3]


def test_same_text_with_two_intents_is_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """As Rasa's validator: a warning naming both places, and the project trains (Rasa's own
    responseselectorbot has "good afternoon" as a greeting and as a goodbye)."""
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(
            make_project,
            {
                "data/more_nlu.yml": """\
                    nlu:
                    - intent: inform
                      examples: |
                        - hi
                    """
            },
        )
    assert errors == []
    [warning] = [r.getMessage() for r in caplog.records if "two intents" in r.getMessage()]
    # data/more_nlu.yml is read before data/nlu.yml
    assert "nlu.yml:5:" in warning
    assert "annotated with two intents, 'inform' and 'greet'" in warning
    assert "more_nlu.yml:4" in warning


def test_a_slot_whose_entity_no_example_annotates_is_a_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's formbot fills num_people from Duckling's ``number``, which no example annotates:
    the project trains, and one line says the slot can only come from payloads."""
    domain = DOMAIN.replace(
        "  size:\n",
        "  people:\n    type: text\n    mappings:\n      - type: from_entity\n"
        "        entity: name\n  size:\n",
    )
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(make_project, {"domain.yml": domain})
    assert errors == []
    texts = [r.getMessage() for r in caplog.records if "fills from entity" in r.getMessage()]
    assert len(texts) == 1, texts
    assert "slot 'people' fills from entity 'name', which no NLU example annotates" in texts[0]
    assert "domain.yml:" in texts[0]


@pytest.mark.parametrize(
    ("dimensions", "warned"), [("[name]", False), ("", False), ("[time]", True)]
)
def test_a_slot_duckling_fills_is_no_warning(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture, dimensions: str, warned: bool
) -> None:
    """With a DucklingEntityExtractor, the entities it is asked for (every one, without
    ``dimensions``) come from it."""
    domain = DOMAIN.replace(
        "  size:\n",
        "  people:\n    type: text\n    mappings:\n      - type: from_entity\n"
        "        entity: name\n  size:\n",
    )
    config = "pipeline:\n- name: DucklingEntityExtractor\n  url: http://localhost:8000\n"
    if dimensions:
        config += f"  dimensions: {dimensions}\n"
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(make_project, {"domain.yml": domain, "config.yml": config})
    assert errors == []
    texts = [r.getMessage() for r in caplog.records]
    assert any("fills from entity 'name'" in t for t in texts) == warned, texts


NLU_BASE = """\
version: "3.1"
"""
# The travel-assistant project's mismatch: examples of faq/travel_insurance, responses named
# utter_faq/ask_travel_insurance.
TRAVEL_NLU = """\
nlu:
- intent: faq/ask_name
  examples: |
    - what is your name
- intent: faq/travel_insurance
  examples: |
    - do you sell travel insurance
    - can I insure my trip
"""
TRAVEL_RESPONSES = """\
responses:
  utter_faq/ask_travel_insurance:
  - text: Yes, we sell travel insurance.
"""


def _retrieval_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if "retrieval intent '" in r.getMessage() or "is a retrieval intent's" in r.getMessage()
    ]


def test_retrieval_intents_and_responses_that_do_not_match_are_warnings(
    make_project: ProjectMaker, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Rasa trains such a project and its bot answers nothing for the sub-intent (Rasa warns of
    each such example when it trains); a warning each way names the file, the line and the
    likely twin."""
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        errors = _errors(
            make_project,
            {"data/nlu.yml": NLU_BASE + TRAVEL_NLU, "data/faq_responses.yml": TRAVEL_RESPONSES},
        )
    assert errors == []
    assert _retrieval_warnings(caplog) == [
        f"{tmp_path / 'bot' / 'data' / 'nlu.yml'}:8: retrieval intent 'faq/travel_insurance' has "
        "NLU examples but no response 'utter_faq/travel_insurance': without an NLG server "
        "(endpoints.yml nlg:) the bot says nothing when the NLU selects it. Did you mean "
        "'utter_faq/ask_travel_insurance'?",
        f"{tmp_path / 'bot' / 'data' / 'faq_responses.yml'}:3: response "
        "'utter_faq/ask_travel_insurance' is a retrieval intent's, but no NLU example has intent "
        "'faq/ask_travel_insurance': the NLU never selects it (only a /faq/ask_travel_insurance "
        "payload does). Did you mean 'faq/travel_insurance'?",
    ]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, []),  # faq/ask_name and utter_faq/ask_name
        (  # payloads only: /faq/ask_name selects the response
            {"data/nlu.yml": None},
            [],
        ),
        (
            {"data/nlu.yml": NLU_BASE + "nlu:\n- intent: faq/hours\n  examples: |\n    - when\n"},
            [
                "retrieval intent 'faq/hours' has NLU examples but no response 'utter_faq/hours'"
                ": without an NLG server (endpoints.yml nlg:) the bot says nothing when the NLU "
                "selects it. Add a response 'utter_faq/hours' (to the domain or to a data file's "
                "'responses:')",
                "response 'utter_faq/ask_name' is a retrieval intent's, but no NLU example",
            ],
        ),
    ],
)
def test_which_retrieval_intents_are_warned_about(
    make_project: ProjectMaker,
    caplog: pytest.LogCaptureFixture,
    files: dict[str, str | None],
    expected: list[str],
) -> None:
    with caplog.at_level(logging.WARNING, logger="chatbot.project.validation"):
        assert _errors(make_project, files) == []
    warnings = _retrieval_warnings(caplog)
    assert len(warnings) == len(expected), warnings
    for warning, needle in zip(warnings, expected, strict=True):
        assert needle in warning
