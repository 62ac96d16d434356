"""Where in a YAML config file an error is, said the same way by every config loader.

The catalog, the data-quality suites, the access policy and the UAT plans all report a bad entry
as ``file (line N): services[1] (id 'x') > checks[0] (id 'y') > field 'timeout_s': message``;
these helpers turn a YAML parse error or a pydantic error location into those pieces.

:func:`parse_config` is the one YAML reader of every config file: the safe loader (no
``!!python/*`` tags), a size limit, an alias-expansion limit (a "billion laughs" file is refused at
parse instead of hanging whatever walks the data later), duplicate keys refused naming both lines,
and bytes that are not UTF-8 or not allowed in YAML refused with their line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A config file is a few hundred kilobytes at most (1,000 checks make 300 kB); 5 MB is not a config.
MAX_CONFIG_BYTES = 5 * 1024 * 1024
# How many nodes aliases may add beyond those written out: anchors for shared defaults stay cheap,
# while ten aliases of ten aliases of ... (a billion nodes from a 1 kB file) are refused.
MAX_ALIAS_NODES = 100_000
MAX_DEPTH = 100
_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the line, the entry and the field."""


class LocatedError(ValueError):
    """A validation error that knows the field below the model it was raised in."""

    def __init__(self, location: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.location = location


class _ConfigLoader(_YAML_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader whose values that cannot be built (``2030-02-30``, a 5,000-digit number) say where."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as error:
            value = node.value if isinstance(node, yaml.ScalarNode) else "this value"
            shown = repr(value) if len(value) <= 60 else f"{value[:60]!r}... ({len(value):,} characters)"
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown} cannot be read: {str(error)[:200]}", node.start_mark) from error


def parse_config(path: Path, raw: bytes) -> Any:
    """The data of a config file's bytes, or ConfigError naming the file and the line of what is refused."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {len(raw):,} bytes is more than a config file may have "
                          f"({MAX_CONFIG_BYTES // (1024 * 1024)} MB)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = _line_column(raw[: error.start])
        raise ConfigError(f"{path} (line {line}, column {column}): byte 0x{raw[error.start]:02x} is not UTF-8; "
                          "save the file as UTF-8") from error
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
        if root is None:
            return None
        _check_nodes(path, root)
        return _ConfigLoader("").construct_document(root)
    except yaml.reader.ReaderError as error:
        line, column = _line_column(text[: error.position])
        raise ConfigError(f"{path} (line {line}, column {column}): character {error.character!r} is not allowed "
                          "in YAML") from error
    except yaml.YAMLError as error:
        raise ConfigError(yaml_syntax_error(path, error)) from error


def _line_column(before: bytes | str) -> tuple[int, int]:
    newline = b"\n" if isinstance(before, bytes) else "\n"
    return before.count(newline) + 1, len(before) - (before.rfind(newline) + 1) + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_nodes(path: Path, root: yaml.Node) -> None:
    """Refuse duplicate keys, nesting deeper than MAX_DEPTH, recursive aliases and alias bombs.

    Aliases are the same node object in the composed graph, so the expanded size of every node is
    counted once per node (memoised), never by expanding: a billion-node file costs its few nodes.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()
    duplicates: list[tuple[int, str, int]] = []
    stack: list[tuple[yaml.Node, list[yaml.Node] | None, int]] = [(root, None, 1)]
    while stack:
        node, children, depth = stack.pop()
        key = id(node)
        if children is not None:  # every child is counted: the node is finished
            entered.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if key in sizes:
            continue
        if key in entered:
            raise ConfigError(f"{path} (line {node.start_mark.line + 1}): an alias refers to the entry that "
                              "contains it")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path} (line {node.start_mark.line + 1}): nested deeper than {MAX_DEPTH} levels")
        children = _children(node)
        if not children:
            sizes[key] = 1
            continue
        entered.add(key)
        stack.append((node, children, depth))
        if isinstance(node, yaml.MappingNode):
            duplicates.extend(_duplicate_keys(node))
        stack.extend((child, None, depth + 1) for child in reversed(children))
    if duplicates:
        second, name, first = min(duplicates)
        raise ConfigError(f"{path} (line {second}): duplicate key {name!r} (first at line {first}); "
                          "YAML would keep only the last one")
    limit = len(sizes) + MAX_ALIAS_NODES
    if sizes[id(root)] > limit:
        # The deepest node over the limit is where the aliases multiply.
        node = root
        while True:
            bigger = next((child for child in _children(node) if sizes[id(child)] > limit), None)
            if bigger is None:
                break
            node = bigger
        raise ConfigError(f"{path} (line {node.start_mark.line + 1}): aliases expand to "
                          f"{sizes[id(root)]:,} values, more than {limit:,} (a YAML alias bomb?); "
                          "write the values out or use fewer aliases")


def _duplicate_keys(node: yaml.MappingNode) -> list[tuple[int, str, int]]:
    """(line of the repeat, key, line of the first) for each key given twice in one mapping."""
    seen: dict[tuple[str, str], int] = {}
    found = []
    for key, _value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue
        line = key.start_mark.line + 1
        if (key.tag, key.value) in seen:
            found.append((line, key.value, seen[(key.tag, key.value)]))
        else:
            seen[(key.tag, key.value)] = line
    return found


def yaml_syntax_error(path: Path, error: yaml.YAMLError) -> str:
    """``file (line N, column M): YAML syntax error: problem``."""
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{path}{where}: YAML syntax error: {getattr(error, 'problem', None) or error}"


def location_labels(data: Any, location: Sequence[Any], *, discriminator: str | None = None,
                    ident_of: Callable[[dict[str, Any]], Any] | None = None) -> tuple[str, list[Any]]:
    """``"checks[1] (id 'x') > kwargs > field 'min_value'"`` for a pydantic location in ``data``, and its steps.

    A list item is labelled with its ``id`` (or what ``ident_of`` makes of the item); the last step
    is called a field when it is a name. Pydantic puts the value of a tagged union's
    ``discriminator`` field in the location (``("checks", 0, "http", "url")``): that step is left
    out of both the label and the returned steps, which then find the entry's line.
    """
    parts: list[str] = []
    steps: list[Any] = []
    node = data
    for step in location:
        if discriminator and isinstance(node, dict) and step not in node and node.get(discriminator) == step:
            continue
        steps.append(step)
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            label = parts.pop() if parts else ""
            ident = (ident_of(node) if ident_of else node.get("id")) if isinstance(node, dict) else None
            parts.append(f"{label}[{step}]" + (f" (id {ident!r})" if ident else ""))
        else:
            node = node.get(step) if isinstance(node, dict) else None
            parts.append(str(step))
    if parts and isinstance(steps[-1], str):
        parts[-1] = f"field {steps[-1]!r}"
    return " > ".join(parts), steps


def line_of(raw: bytes, location: Sequence[Any]) -> int | None:
    """The 1-based line of the deepest YAML node on ``location`` (only computed on errors)."""
    try:
        node = yaml.compose(raw, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in location:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == step), None)
            if pair is None:
                break
            # A mapping under a key is the entry the key names: its line is the key's, not the block's
            # first line below it.
            key, node = pair
            line = (key if isinstance(node, yaml.MappingNode) else node).start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line
