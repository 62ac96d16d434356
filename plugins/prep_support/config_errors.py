"""Where in a YAML config file an error is, said the same way by every config loader.

The catalog, the data-quality suites, the access policy and the UAT plans all report a bad entry
as ``file (line N): services[1] (id 'x') > checks[0] (id 'y') > field 'timeout_s': message``;
these helpers turn a YAML parse error or a pydantic error location into those pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    line = None
    for step in location:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == step), None)
            if node is None:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            break
    else:
        line = node.start_mark.line + 1 if node is not None else line
    return line
