"""``chatbot visualize``: the project's stories as one graph (Rasa's ``rasa visualize``).

Every story path (checkpoints followed and ``or`` steps spelled out, as training reads them) starts
at START; paths that begin with the same steps share those nodes, so the graph is the tree of
every way a conversation of the stories can go, and where a node branches is where stories part.
User turns are blue (the intent, its entities, or the user's words in end-to-end stories), actions
green (``bot:`` texts in quotes), slots and forms yellow. Hovering a node lists the stories that
pass through it.

It is written as one HTML page holding an SVG laid out here (no script, nothing fetched: it opens
offline), or as Graphviz DOT where the output file ends in ``.dot``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.project.stories import ANY_VALUE, ActionStep, ActiveLoopStep, SlotStep, Step, UserStep
from training.story_graph import FlatStory

START = "START"
CHAR_WIDTH = 7.2  # px per character of the 12px monospace labels
ROW_HEIGHT = 34
BOX_HEIGHT = 24
COLUMN_GAP = 48
PADDING = 12
MAX_LABEL = 60  # characters; longer labels are cut with "…" (the tooltip has them whole)
COLOURS = {"start": "#dddddd", "user": "#cfe3ff", "action": "#d3f2d3", "state": "#fff2bf"}


@dataclass
class Node:
    label: str
    kind: str  # start, user, action, state
    depth: int
    children: dict[str, Node] = field(default_factory=dict)
    stories: list[str] = field(default_factory=list)
    row: float = 0.0
    number: int = 0


def step_label(step: Step) -> tuple[str, str]:
    """(label, kind) of one story step."""
    if isinstance(step, UserStep):
        if step.intent is None:
            return json.dumps(step.text or "", ensure_ascii=False), "user"
        entities = {e.entity: e.value for e in step.entities}
        extra = " " + json.dumps(entities, ensure_ascii=False) if entities else ""
        return f"{step.intent}{extra}", "user"
    if isinstance(step, ActionStep):
        if step.name is None:
            return json.dumps(step.text or "", ensure_ascii=False), "action"
        return step.name, "action"
    if isinstance(step, SlotStep):
        shown = [
            name if value == ANY_VALUE else f"{name}={json.dumps(value, ensure_ascii=False)}"
            for name, value in step.slots
        ]
        return "slot_was_set: " + ", ".join(shown), "state"
    if isinstance(step, ActiveLoopStep):
        return f"active_loop: {step.name if step.name is not None else 'null'}", "state"
    return type(step).__name__, "state"  # checkpoints and ``or`` are resolved before this


def story_tree(stories: Sequence[FlatStory]) -> Node:
    """The prefix tree of the stories' steps, rooted at START."""
    root = Node(START, "start", 0)
    for story in stories:
        node = root
        node.stories.append(story.name)
        for step in story.steps:
            label, kind = step_label(step)
            child = node.children.get(label)
            if child is None:
                child = node.children[label] = Node(label, kind, node.depth + 1)
            child.stories.append(story.name)
            node = child
    _lay_out(root)
    return root


def _lay_out(root: Node) -> None:
    """Leaves on consecutive rows in story order, each parent centred on its children."""
    next_row = 0
    number = 0

    def place(node: Node) -> None:
        nonlocal next_row, number
        node.number = number
        number += 1
        if not node.children:
            node.row = next_row
            next_row += 1
            return
        for child in node.children.values():
            place(child)
        rows = [child.row for child in node.children.values()]
        node.row = (min(rows) + max(rows)) / 2

    place(root)


def nodes_of(root: Node) -> list[Node]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(list(node.children.values())))
    return sorted(found, key=lambda n: n.number)


def _shown(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _tooltip(node: Node) -> str:
    names = sorted(set(node.stories))
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f"{node.label}\nstories: {', '.join(names[:10])}{more}"


def svg(root: Node) -> str:
    nodes = nodes_of(root)
    depth = max(n.depth for n in nodes)
    widths = [0.0] * (depth + 1)
    for node in nodes:
        width = len(_shown(node.label)) * CHAR_WIDTH + 2 * PADDING
        widths[node.depth] = max(widths[node.depth], width)
    lefts = [PADDING + sum(widths[:d]) + COLUMN_GAP * d for d in range(depth + 1)]
    rows = max(n.row for n in nodes) + 1

    def box(node: Node) -> tuple[float, float, float]:
        """(left, top, width) of a node's box."""
        width = len(_shown(node.label)) * CHAR_WIDTH + 2 * PADDING
        top = PADDING + node.row * ROW_HEIGHT
        return lefts[node.depth], top, width

    width = lefts[-1] + widths[-1] + PADDING
    height = PADDING * 2 + rows * ROW_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        'font-family="monospace" font-size="12">'
    ]
    for node in nodes:
        x, y, w = box(node)
        for child in node.children.values():
            cx, cy, _ = box(child)
            x1, y1, x2, y2 = x + w, y + BOX_HEIGHT / 2, cx, cy + BOX_HEIGHT / 2
            middle = (x1 + x2) / 2
            parts.append(
                f'<path class="edge" d="M{x1:.1f},{y1:.1f} C{middle:.1f},{y1:.1f} '
                f'{middle:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" fill="none" stroke="#888"/>'
            )
    for node in nodes:
        x, y, w = box(node)
        parts.append(
            f'<g class="node {node.kind}"><title>{html.escape(_tooltip(node))}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BOX_HEIGHT}" rx="'
            f'{BOX_HEIGHT / 2 if node.kind == "user" else 3}" fill="{COLOURS[node.kind]}" '
            f'stroke="#555"/><text x="{x + PADDING:.1f}" y="{y + BOX_HEIGHT / 2 + 4:.1f}">'
            f"{html.escape(_shown(node.label))}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def html_page(root: Node, title: str) -> str:
    stories = len(set(root.stories))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:16px} .legend span{padding:2px 8px;"
        "margin-right:8px;border:1px solid #555}</style></head><body>"
        f"<h3>{html.escape(title)}: {stories} stories</h3>"
        '<p class="legend">'
        + "".join(
            f'<span style="background:{COLOURS[k]}">{name}</span>'
            for k, name in (("user", "user"), ("action", "action"), ("state", "slot / form"))
        )
        + "</p>\n"
        + svg(root)
        + "\n</body></html>\n"
    )


def dot(root: Node) -> str:
    lines = ["digraph stories {", "  rankdir=LR;", '  node [fontname="monospace" style=filled];']
    for node in nodes_of(root):
        shape = "box" if node.kind in ("action", "state") else "ellipse"
        lines.append(
            f"  n{node.number} [label={json.dumps(_shown(node.label), ensure_ascii=False)} "
            f'shape={shape} fillcolor="{COLOURS[node.kind]}"];'
        )
        lines.extend(f"  n{node.number} -> n{c.number};" for c in node.children.values())
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(stories: Sequence[FlatStory], out: Path, title: str) -> dict[str, Any]:
    """Write the stories' graph to ``out`` (HTML, or DOT for ``.dot``); returns counts."""
    root = story_tree(stories)
    text = dot(root) if out.suffix.lower() == ".dot" else html_page(root, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return {"stories": len(set(root.stories)), "nodes": len(nodes_of(root))}
