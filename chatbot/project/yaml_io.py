"""YAML with line numbers, read the way Rasa reads it.

``load_yaml(path)`` parses a file with PyYAML's C parser (the pure-Python one where libyaml is
missing) into plain Python values, except that mappings become ``YamlMap`` and sequences become
``YamlList``: ``dict`` and ``list`` subclasses that also carry the 1-based line of each key or
item. ``line_of(node, key)`` reads them back and copes with plain dicts and lists (``None``).

Scalars follow YAML 1.2's core schema, as Rasa's ruamel.yaml reader does: only ``true``/``false``
are booleans (``yes``, ``no``, ``on`` and ``off`` stay text), ``010`` is ten, and ``1:20`` and
``2021-01-01`` are text. Duplicate keys are errors.

Every problem (a missing file, a path that is no regular file or too large a file, bytes that are
not UTF-8, a syntax error, a duplicate key) is a ``ProjectError`` naming the file and line. The
small ``expect_*`` helpers below check the shape of a value and say where it was and what was
expected.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from chatbot.errors import ProjectError
from chatbot.file_input import DATA_FILE_LIMIT, file_problem, read_bytes

logger = logging.getLogger(__name__)

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlMap(dict[Any, Any]):
    """A mapping read from YAML: ``line`` is where it starts, ``key_lines`` where each key is."""

    __slots__ = ("key_lines", "line")

    def __init__(self, *args: Any, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = line
        self.key_lines: dict[Any, int] = {}


class YamlList(list[Any]):
    """A sequence read from YAML: ``line`` is where it starts, ``item_lines`` where each item is."""

    __slots__ = ("item_lines", "line")

    def __init__(self, *args: Any, line: int | None = None) -> None:
        super().__init__(*args)
        self.line = line
        self.item_lines: list[int] = []


def line_of(node: Any, key: Any = None) -> int | None:
    """The line of ``key`` in a mapping (of item ``key`` in a sequence), or of the node itself.

    Falls back to the node's own line when the key is unknown; ``None`` for values that were not
    read from YAML.
    """
    if isinstance(node, YamlMap):
        if key is None:
            return node.line
        return node.key_lines.get(key, node.line)
    if isinstance(node, YamlList):
        if isinstance(key, int) and 0 <= key < len(node.item_lines):
            return node.item_lines[key]
        return node.line
    return None


def to_plain(value: Any) -> Any:
    """``value`` with every ``YamlMap``/``YamlList`` inside replaced by a plain dict/list."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def scalar_text(value: Any) -> str:
    """A YAML scalar as the text Rasa would keep: ``true`` not ``True``, ``null`` for None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


# --- the loader ---------------------------------------------------------------------------------


class _Resolver(Resolver):
    """YAML 1.2 core schema for plain scalars (what Rasa's ruamel.yaml reader uses)."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # PyYAML's class-level registry, our own copy


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Resolver.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])

try:
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]  # libyaml: faster
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser, Composer):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)


class _Loader(_Parser, SafeConstructor, _Resolver):
    def __init__(self, stream: str, file: str | None) -> None:
        _Parser.__init__(self, stream)
        SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self.file = file


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _construct_map(loader: _Loader, node: MappingNode) -> Any:
    data = YamlMap(line=_line(node))
    yield data
    own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
    loader.flatten_mapping(node)
    merged = len(node.value) - own  # ``<<: *anchor`` pairs come first and may be overridden
    seen: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ProjectError(
                "a mapping key must be a single value, not a list or mapping",
                file=loader.file,
                line=_line(key_node),
            ) from None
        if index >= merged:
            if key in seen:
                raise ProjectError(
                    "duplicate key",
                    file=loader.file,
                    line=_line(key_node),
                    key=str(key),
                    hint=f"It is already set on line {data.key_lines[key]}; "
                    "each key may appear once in a mapping",
                )
            seen.add(key)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = _line(key_node)


def _construct_list(loader: _Loader, node: SequenceNode) -> Any:
    data = YamlList(line=_line(node))
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)
    data.item_lines = [_line(child) for child in node.value]


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    try:
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text)
    except ValueError:  # more digits than Python turns into a number (4,300)
        raise ProjectError(
            f"a number of {len(text)} digits ({text[:12]}...) is too long to be read; quote it "
            "if it is text",
            file=loader.file,
            line=_line(node),
        ) from None


def _refuse(loader: _Loader, node: Node) -> Any:
    """YAML's explicit types that JSON has no value for (``!!binary`` bytes, ``!!set``,
    ``!!pairs``, ``!!timestamp``): nothing a project file needs, and a model file could not
    hold them."""
    kind = str(node.tag).rpartition(":")[2]
    raise ProjectError(
        f"a !!{kind} value is not read: project files hold text, numbers, true/false, null, "
        "lists and mappings",
        file=loader.file,
        line=_line(node),
        hint="Write it as text (quoted) or as a list",
    )


for _tag, _constructor in (
    ("tag:yaml.org,2002:binary", _refuse),
    ("tag:yaml.org,2002:set", _refuse),
    ("tag:yaml.org,2002:pairs", _refuse),
    ("tag:yaml.org,2002:timestamp", _refuse),
    ("tag:yaml.org,2002:map", _construct_map),
    ("tag:yaml.org,2002:omap", _construct_map),
    ("tag:yaml.org,2002:seq", _construct_list),
    ("tag:yaml.org,2002:int", _construct_int),
):
    _Loader.add_constructor(_tag, _constructor)  # type: ignore[type-var]


# How many more values than are written out a document's aliases may add. A "billion laughs"
# (anchors of lists of aliases of anchors ...) is a few lines that stand for millions of values,
# which every later step (validation, the model file) would walk through one by one.
MAX_ALIAS_EXPANSION = 1_000_000


def _check_aliases(root: Node, file: str | None) -> None:
    """Refuse a document whose aliases add more than MAX_ALIAS_EXPANSION values, or that holds
    a node inside itself (an alias to an anchor it is within)."""
    size: dict[int, int] = {}
    inside: set[int] = set()
    written = 0
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            size[key] = 1 + sum(size[id(child)] for child in children)
            inside.discard(key)
            continue
        if key in size:
            continue
        if key in inside:
            raise ProjectError(
                "an alias refers to an anchor it is inside of (a structure that holds itself)",
                file=file,
                line=_line(node),
            )
        inside.add(key)
        written += 1
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in size)
    total = size[id(root)]
    if total - written > MAX_ALIAS_EXPANSION:
        # Named: the innermost value that stands for too many values alone.
        where = root
        while True:
            bigger = [c for c in _children(where) if size[id(c)] > MAX_ALIAS_EXPANSION]
            if not bigger:
                break
            where = bigger[0]
        raise ProjectError(
            f"the anchors and aliases of this document stand for {total:,} values, "
            f"{written:,} of them written out: more than {MAX_ALIAS_EXPANSION:,} added by "
            f"aliases, {size[id(where)]:,} by the value here",
            file=file,
            line=_line(where),
            hint="Write the values out, or use fewer aliases of aliases",
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml_text(text: str, *, file: str | None = None) -> Any:
    """Parse one YAML document; an empty document is ``None``."""
    loader = _Loader(text, file)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node, file)
        return loader.construct_document(node)
    except ProjectError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        if e.context and e.problem:
            problem = f"{e.context}, {e.problem}"
        raise ProjectError(
            f"YAML syntax error: {problem}",
            file=file,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    except yaml.YAMLError as e:
        raise ProjectError(f"YAML syntax error: {e}", file=file) from None
    finally:
        loader.dispose()


def read_text(path: Path, *, file: str | None = None) -> str:
    """A text file's content; a missing file, a path that is no regular file (a device, a named
    pipe: ``chatbot.file_input``), one past ``DATA_FILE_LIMIT`` or bytes that are not UTF-8 are
    ``ProjectError``s."""
    name = file if file is not None else str(path)
    try:
        raw = read_bytes(path, limit=DATA_FILE_LIMIT, what="a project file")
    except OSError as e:
        raise ProjectError(file_problem(e), file=name) from None
    return decode_text(raw, file=name)


def decode_text(raw: bytes, *, file: str | None) -> str:
    """UTF-8 bytes (a byte order mark left out) as text; other bytes are a ``ProjectError``
    naming the line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ProjectError(
            f"the file is not UTF-8 text (byte 0x{raw[e.start]:02x})",
            file=file,
            line=line,
            hint="Save it with UTF-8 encoding",
        ) from None


def load_yaml(path: Path, *, file: str | None = None) -> Any:
    """Read and parse a YAML file; ``file`` is the name errors show (default: ``str(path)``)."""
    name = file if file is not None else str(path)
    return load_yaml_text(read_text(path, file=name), file=name)


# --- shape checks shared by the readers ---------------------------------------------------------


def describe_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def close_matches_hint(name: Any, candidates: Iterable[str], what: str = "valid names") -> str:
    """``did you mean 'x'?`` when something is close, else the list of valid names (shortened)."""
    names = sorted({str(c) for c in candidates})
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    if close:
        quoted = [f"'{c}'" for c in close]
        options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        return f"Did you mean {options}?"
    if not names:
        return f"There are no {what}"
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"{what[:1].upper()}{what[1:]}: {shown}"


def unknown_keys(
    mapping: dict[Any, Any], allowed: Collection[str], *, file: str | None, what: str
) -> list[ProjectError]:
    """An error for each key of ``mapping`` that is not in ``allowed``."""
    errors = []
    for key in mapping:
        if key not in allowed:
            errors.append(
                ProjectError(
                    f"unknown key in {what}",
                    file=file,
                    line=line_of(mapping, key),
                    key=str(key),
                    hint=close_matches_hint(key, allowed, "valid keys"),
                )
            )
    return errors


def misspelled_keys(
    mapping: dict[Any, Any], allowed: Collection[str], *, file: str | None, what: str
) -> list[ProjectError]:
    """For keys Rasa's schema lets through and we do not read: an error for each that looks
    like a misspelling of an ``allowed`` one (``Did you mean``), one warning line for each
    other (not read)."""
    errors = []
    for unknown in unknown_keys(mapping, allowed, file=file, what=what):
        if (unknown.hint or "").startswith("Did you mean"):
            errors.append(unknown)
        else:
            logger.warning("%s; not read", unknown)
    return errors


def setting_not_named(
    settings: dict[Any, Any], owner: str, *, file: str | None, line: int | None, example: str
) -> ProjectError | None:
    """The error for the first key of ``settings`` (a component's, a block's) that is not text
    (YAML reads ``2.5: 100`` as a number key), or None; ``example``: a setting as written."""
    not_named = [key for key in settings if not isinstance(key, str)]
    if not not_named:
        return None
    return ProjectError(
        f"'{owner}': a setting's name must be text",
        file=file,
        line=line_of(settings, not_named[0]) or line,
        key=str(not_named[0]),
        hint=f"Write settings as 'name: value', e.g. '{example}'",
    )


def expect(
    value: Any,
    types: type | tuple[type, ...],
    *,
    what: str,
    file: str | None,
    line: int | None,
    key: str | None = None,
) -> Any:
    """``value`` if it is one of ``types`` (bools are not numbers), else a ``ProjectError``."""
    wanted = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, wanted) and not (
        isinstance(value, bool) and bool not in wanted and (int in wanted or float in wanted)
    )
    if not ok:
        raise ProjectError(
            f"{what} must be {_names(wanted)}, found {describe_type(value)}",
            file=file,
            line=line,
            key=key,
            value=value if isinstance(value, (str, int, float, bool)) else None,
        )
    return value


def _names(types: tuple[type, ...]) -> str:
    labels = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true or false",
        type(None): "null",
    }
    return " or ".join(dict.fromkeys(labels.get(t, t.__name__) for t in types))


def as_name_list(
    value: Any, *, what: str, file: str | None, line: int | None, key: str | None = None
) -> tuple[str, ...]:
    """A name or a list of names (``intent: greet`` / ``intent: [greet, hi]``) as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    expect(value, list, what=what, file=file, line=line, key=key)
    names = []
    for index, item in enumerate(value):
        expect(
            item, str, what=f"each entry of {what}", file=file, line=line_of(value, index) or line
        )
        names.append(item)
    return tuple(names)
