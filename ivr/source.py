"""Flow files: YAML read with the line of every field, and the error that names it.

``load_yaml`` returns plain data plus a ``Lines`` index from a dotted field path
(``steps.greet.prompt``, ``intents.dental.phrases.2``) to its line, so every
check of a flow can say where the problem is:
``hospital.yaml:41: steps.greet.on_match: no step named 'rout'``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml


class FlowError(Exception):
    """A flow file that cannot run, with the file, line and field at fault."""

    def __init__(self, source: str, line: int | None, field_path: str, problem: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        message = f"{where}: {field_path}: {problem}" if field_path else f"{where}: {problem}"
        super().__init__(message)
        self.source, self.line, self.field_path, self.problem = source, line, field_path, problem


@dataclass(slots=True)
class Lines:
    """Where each field of one file was written."""

    source: str
    by_path: dict[str, int] = field(default_factory=dict)

    def line(self, field_path: str) -> int | None:
        """The line of ``field_path``, or of its nearest enclosing field."""
        path = field_path
        while path:
            if path in self.by_path:
                return self.by_path[path]
            path = path.rpartition(".")[0]
        return self.by_path.get("")

    def error(self, field_path: str, problem: str) -> FlowError:
        """A ``FlowError`` at ``field_path``."""
        return FlowError(self.source, self.line(field_path), field_path, problem)


def load_yaml(text: str, source: str) -> tuple[Any, Lines]:
    """Parse ``text`` (from ``source``, for messages) into data and its lines.

    Raises:
        FlowError: the text is not YAML, or not a mapping at the top.
    """
    lines = Lines(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", exc)
        raise FlowError(source, line, "", f"not valid YAML: {problem}") from None
    if node is None:
        raise FlowError(source, None, "", "the file is empty")
    data = _convert(node, "", lines)
    if not isinstance(data, dict):
        raise FlowError(source, node.start_mark.line + 1, "", "expected a mapping at the top")
    return data, lines


def _convert(node: yaml.Node, path: str, lines: Lines) -> Any:
    lines.by_path.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(b"").construct_object(key_node)
            child = f"{path}.{key}" if path else str(key)
            lines.by_path[child] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, child, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, f"{path}.{i}" if path else str(i), lines)
            for i, item in enumerate(node.value)
        ]
    return yaml.SafeLoader(b"").construct_object(node)
