"""YAML for files a user hands us (sweeps, notebook grids): PyYAML's SafeLoader with limits.

``yaml.safe_load`` accepts things a sweep file should never hold, and some of them hang or
exhaust memory before any check runs. :func:`load_yaml` refuses, with one line:

- a key given twice in one mapping (PyYAML keeps the last one silently), naming the key and line;
- nesting deeper than :data:`MAX_DEPTH` (PyYAML's composer recurses: 5,000 ``[`` is a RecursionError);
- an alias that refers to a node containing itself (a structure that never ends);
- aliases that expand to more than :data:`MAX_NODES` nodes (the "billion laughs": a few lines
  of anchors that become 10⁹ values once serialised or validated).

Aliases are shared, not copied, while loading, so the expanded size is counted on the node graph
(memoised per node) without building anything.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kling_lab.errors import InvalidInput

MAX_DEPTH = 64
MAX_NODES = 1_000_000


class YamlLimitError(InvalidInput):
    """A YAML document breaks one of :func:`load_yaml`'s limits."""


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that bounds nesting while composing and refuses duplicate keys while constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # The scanner looks far ahead inside flow collections (``[[[[…``), so a deep one is
        # refused here, before scanning it costs more than the document is worth.
        if self.flow_level >= MAX_DEPTH:
            mark = self.get_mark()
            raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})")
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` merges on purpose; the mapping's own keys win
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: SafeConstructor refuses it itself
            line = key_node.start_mark.line + 1
            if first is not None:
                raise YamlLimitError(f"key {key!r} appears twice in one mapping (lines {first} and {line})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases form a cycle, or expand past MAX_NODES values or MAX_DEPTH levels.

    Each node is measured once (memoised by identity), so this is linear in the composed graph."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)
    on_path: set[int] = set()

    def measure(node: Node) -> tuple[int, int]:
        key = id(node)
        if key in measured:
            return measured[key]
        if key in on_path:
            raise YamlLimitError(
                f"an alias refers to a node that contains it (line {node.start_mark.line + 1}): it never ends"
            )
        on_path.add(key)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        total, depth = 1, 0
        for child in children:
            n, d = measure(child)
            total, depth = total + n, max(depth, d)
            if total > MAX_NODES:
                raise YamlLimitError(
                    f"anchors and aliases expand to more than {MAX_NODES:,} values "
                    f"(line {node.start_mark.line + 1}): refused (a 'billion laughs' document)"
                )
        depth += 1
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"aliases nest more than {MAX_DEPTH} levels deep (line {node.start_mark.line + 1})")
        on_path.discard(key)
        measured[key] = (total, depth)
        return measured[key]

    measure(root)


def load_yaml(text: str) -> Any:
    """Parse one YAML document safely within the limits above.

    Raises :class:`YamlLimitError` (an :class:`~kling_lab.errors.InvalidInput`) for a limit and
    ``yaml.YAMLError`` for a syntax error."""
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if not isinstance(node, ScalarNode):
            _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def yaml_error_line(exc: yaml.YAMLError) -> str:
    """A syntax error's first line plus where it is (PyYAML's own message spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else str(problem)


__all__ = ["MAX_DEPTH", "MAX_NODES", "YamlLimitError", "load_yaml", "yaml_error_line"]
