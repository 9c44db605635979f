"""The ``responses:`` section of a domain (also allowed in training data files, for retrieval
intents): response variations with their channel and slot conditions, read and written back."""

from __future__ import annotations

import logging
from typing import Any

from chatbot.errors import ProjectError
from chatbot.project.domain import Origin, ResponseCondition, ResponseVariation
from chatbot.project.yaml_io import describe_type, expect, line_of, to_plain, unknown_keys

logger = logging.getLogger(__name__)

# Keys of a variation that are about when and where it is used, or describe it, rather than
# something to send.
_NON_CONTENT_KEYS = ("channel", "condition", "metadata", "id")
CONTENT_KEYS = ("text", "image", "custom", "buttons", "attachment", "quick_replies", "elements")
_CONDITION_KEYS = ("type", "name", "value")


def read_responses(
    data: dict[Any, Any], *, file: str | None
) -> tuple[dict[str, tuple[ResponseVariation, ...]], list[ProjectError]]:
    """Every response of a ``responses:`` mapping; bad variations are errors, the rest kept."""
    responses: dict[str, tuple[ResponseVariation, ...]] = {}
    errors: list[ProjectError] = []
    for name, variations in data.items():
        line = line_of(data, name)
        if not isinstance(name, str):
            errors.append(
                ProjectError("a response name must be text", file=file, line=line, value=name)
            )
            continue
        # An empty list is a response the domain leaves to an NLG server (Rasa accepts it; the
        # project check warns about it).
        if not isinstance(variations, list):
            errors.append(
                ProjectError(
                    f"response '{name}' must be a list of variations, "
                    f"found {describe_type(variations)}",
                    file=file,
                    line=line,
                    key=name,
                    hint="Write e.g. '- text: \"Hello!\"' under it",
                )
            )
            continue
        result = []
        for index, variation in enumerate(variations):
            try:
                result.append(
                    _read_variation(
                        name, variation, file=file, line=line_of(variations, index) or line
                    )
                )
            except ProjectError as e:
                errors.append(e)
        responses[name] = tuple(result)
    return responses, errors


def _read_variation(
    name: str, data: Any, *, file: str | None, line: int | None
) -> ResponseVariation:
    if isinstance(data, str):
        raise ProjectError(
            f"a variation of response '{name}' is plain text",
            file=file,
            line=line,
            value=data,
            hint=f"Write '- text: {data!r}'",
        )
    expect(data, dict, what=f"each variation of response '{name}'", file=file, line=line)
    if not any(key not in _NON_CONTENT_KEYS for key in data):
        raise ProjectError(
            f"a variation of response '{name}' has nothing to send",
            file=file,
            line=line,
            hint=f"Give it one of: {', '.join(CONTENT_KEYS)}",
        )
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise ProjectError(
            f"'text' of response '{name}' must be text, found {describe_type(text)}",
            file=file,
            line=line_of(data, "text"),
            key="text",
            hint="Put the text in quotes",
        )
    for key in ("buttons", "quick_replies", "elements"):
        if data.get(key) is not None:
            expect(
                data[key],
                list,
                what=f"'{key}' of response '{name}'",
                file=file,
                line=line_of(data, key),
                key=key,
            )
    if data.get("custom") is not None:
        expect(
            data["custom"],
            dict,
            what=f"'custom' of response '{name}'",
            file=file,
            line=line_of(data, "custom"),
            key="custom",
        )
    channel = data.get("channel")
    if channel is not None:
        expect(
            channel,
            str,
            what=f"'channel' of response '{name}'",
            file=file,
            line=line_of(data, "channel"),
            key="channel",
        )
    conditions = _read_conditions(
        name, data.get("condition"), file=file, line=line_of(data, "condition")
    )
    content = {k: to_plain(v) for k, v in data.items() if k not in ("channel", "condition")}
    return ResponseVariation(content, channel, conditions, Origin(file, line))


def _read_conditions(
    name: str, data: Any, *, file: str | None, line: int | None
) -> tuple[ResponseCondition, ...]:
    if data is None:
        return ()
    expect(
        data, list, what=f"'condition' of response '{name}'", file=file, line=line, key="condition"
    )
    conditions = []
    for index, item in enumerate(data):
        item_line = line_of(data, index) or line
        expect(item, dict, what="each response condition", file=file, line=item_line)
        bad = unknown_keys(item, _CONDITION_KEYS, file=file, what="a response condition")
        if bad:
            raise bad[0]
        kind = item.get("type", "slot")
        if kind != "slot":
            raise ProjectError(
                "unknown response condition type",
                file=file,
                line=line_of(item, "type"),
                key="type",
                value=kind,
                hint="The only condition type is 'slot'",
            )
        slot = item.get("name")
        if not isinstance(slot, str):
            raise ProjectError(
                "a response condition needs the slot 'name'",
                file=file,
                line=line_of(item, "name") if "name" in item else item_line,
                key="name",
            )
        conditions.append(ResponseCondition(name=slot, value=to_plain(item.get("value"))))
    return tuple(conditions)


def variation_to_dict(variation: ResponseVariation) -> dict[str, Any]:
    data = dict(variation.data)
    if variation.channel is not None:
        data["channel"] = variation.channel
    if variation.conditions:
        data["condition"] = [
            {"type": c.type, "name": c.name, "value": c.value} for c in variation.conditions
        ]
    return data
