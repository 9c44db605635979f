"""``chatbot visualize``: the stories as one tree of steps from START, written as a page with an
SVG (or as DOT)."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from chatbot.project.loader import load_project
from tests.helpers import DOMAINS
from tests.test_cli import chatbot
from training.story_graph import resolve
from training.visualize import nodes_of, step_label, story_tree, write_graph

SVG = "{http://www.w3.org/2000/svg}"


def _svg(page: str) -> ET.Element:
    return ET.fromstring(page[page.index("<svg") : page.index("</svg>") + len("</svg>")])


def test_stories_that_begin_alike_share_their_first_steps(tmp_path: Path) -> None:
    project = load_project(DOMAINS / "moodbot")
    stories = resolve(project.stories)
    root = story_tree(stories)
    # One node per distinct prefix of the stories' steps, START included.
    prefixes = {
        tuple(step_label(step)[0] for step in story.steps[:n])
        for story in stories
        for n in range(len(story.steps) + 1)
    }
    assert len(nodes_of(root)) == len(prefixes)
    # Every story is a path from START through its steps' labels.
    for story in stories:
        node = root
        for step in story.steps:
            node = node.children[step_label(step)[0]]
            assert story.name in node.stories

    out = tmp_path / "graph.html"
    counts = write_graph(stories, out, "moodbot")
    assert counts == {"stories": len({s.name for s in stories}), "nodes": len(prefixes)}
    svg = _svg(out.read_text())
    groups = svg.findall(f"{SVG}g")
    assert len(groups) == len(prefixes)
    assert len(svg.findall(f"{SVG}path")) == len(prefixes) - 1  # a tree: one edge per non-root
    texts = [g.find(f"{SVG}text").text for g in groups]  # type: ignore[union-attr]
    assert texts[0] == "START" and "mood_great" in texts and "utter_happy" in texts
    # Boxes do not overlap: on one column, rows are apart.
    boxes = {
        (float(r.get("x", 0)), float(r.get("y", 0)))
        for g in groups
        if (r := g.find(f"{SVG}rect")) is not None
    }
    assert len(boxes) == len(groups)


def test_labels_are_escaped_and_every_kind_of_step_is_drawn(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    (bot / "data").mkdir(parents=True)
    (bot / "domain.yml").write_text(
        "intents: [inform]\nentities: [city]\nslots:\n  city:\n    type: text\n"
        "    mappings: [{type: from_entity, entity: city}]\n"
        "forms:\n  trip_form:\n    required_slots: [city]\n"
        "responses:\n  utter_ok:\n  - text: ok\n  utter_ask_city:\n  - text: where?\n"
    )
    (bot / "data" / "stories.yml").write_text(
        "stories:\n- story: <b>odd & name</b>\n  steps:\n"
        '  - user: "I <3 [Paris](city) & more"\n'
        '  - bot: "Paris? <ok>"\n'
        "  - intent: inform\n    entities: [{city: Rome}]\n"
        "  - action: trip_form\n  - active_loop: trip_form\n"
        "  - slot_was_set: [{city: Rome}]\n  - action: utter_ok\n"
    )
    result = chatbot("visualize", "--project", str(bot), "--out", str(tmp_path / "g.html"))
    assert result.returncode == 0, result.stderr
    assert "1 story paths, 8 nodes" in result.stdout
    page = (tmp_path / "g.html").read_text()
    svg = _svg(page)  # parses: every label and tooltip is escaped
    texts = [g.find(f"{SVG}text").text for g in svg.findall(f"{SVG}g")]  # type: ignore[union-attr]
    assert texts == [
        "START",
        '"I <3 Paris & more"',
        '"Paris? <ok>"',
        'inform {"city": "Rome"}',
        "trip_form",
        "active_loop: trip_form",
        'slot_was_set: city="Rome"',
        "utter_ok",
    ]
    kinds = [g.get("class") for g in svg.findall(f"{SVG}g")]
    assert kinds == [
        f"node {k}"
        for k in ["start", "user", "action", "user", "action", "state", "state", "action"]
    ]
    title = svg.find(f"{SVG}g/{SVG}title")
    assert title is not None and "<b>odd & name</b>" in (title.text or "")
    assert "<b>odd" not in page.replace("&lt;b&gt;odd", "")  # never raw markup

    result = chatbot("visualize", "--project", str(bot), "--out", str(tmp_path / "g.dot"))
    assert result.returncode == 0, result.stderr
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph stories {") and dot.rstrip().endswith("}")
    assert len(re.findall(r"^  n\d+ -> n\d+;$", dot, re.M)) == 7


def test_a_project_without_stories_is_told_so(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text("intents: [greet]\n")
    result = chatbot("visualize", "--project", str(tmp_path), "--out", str(tmp_path / "g.html"))
    assert result.returncode == 1 and "no stories to draw" in result.stderr
    assert "Traceback" not in result.stderr


def test_rasas_visualize_options(tmp_path: Path) -> None:
    """``rasa visualize --stories FILE --config --max-history --nlu``: the stories drawn are the
    ones given; the other options are accepted with a line each."""
    bot = tmp_path / "bot"
    shutil.copytree(DOMAINS / "moodbot", bot, ignore=shutil.ignore_patterns("models", "results"))
    other = tmp_path / "other_stories.yml"
    other.write_text(
        "stories:\n- story: one\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    )
    result = chatbot(
        "visualize", "--project", str(bot), "--stories", str(other), "--config", "config.yml",
        "--max-history", "3", "--nlu", "data/nlu.yml", "--out", str(tmp_path / "g.dot"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 story paths, 3 nodes" in result.stdout
    for flag in ("--config", "--max-history", "--nlu"):
        assert f"{flag}: accepted, not needed here" in result.stdout
