"""Plan YAML read within limits: a plan is a page or two of settings, so a file that is
huge, nested thousands deep or built of aliases that expand exponentially ("billion
laughs") is refused with a message instead of hanging the process or dying of a
RecursionError.  Pure: the caller reads the file.

The limits are checked in this order, each before the step that it protects:

1. the size of the text (:data:`MAX_BYTES`);
2. the nesting depth, from the parser's event stream (the parser is a loop; PyYAML's
   composer and constructor recurse once per level, so the depth must be known before
   either runs) (:data:`MAX_DEPTH`);
3. the expanded size and depth of the node graph, counted once per node (aliases
   share nodes, so a count that follows them naively is itself exponential); an alias
   to a node that contains it is a cycle and refused (:data:`MAX_VALUES`); and a key
   said twice in one mapping is refused with both lines (YAML keeps the last silently).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "YamlLimitError", "load"]

#: 1 MiB: the shipped plan is about 10 KiB
MAX_BYTES = 1 << 20
#: levels of nesting (the shipped plan has 6)
MAX_DEPTH = 64
#: values (scalars, lists and mappings) once aliases are expanded: 20 times the shipped
#: plan's 1,000, and few enough that reading them takes a fraction of a second
MAX_VALUES = 20_000


class YamlLimitError(ValueError):
    """The text is past one of the limits; ``line`` is where (1-based), when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def load(text: str) -> tuple[yaml.Node | None, Any]:
    """The composed node (for line numbers) and the constructed data of ``text``.

    Raises :class:`YamlLimitError` past a limit, ``yaml.YAMLError`` for text that is not
    YAML, and ValueError for a scalar YAML's constructor refuses (``2026-02-30``)."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise YamlLimitError(f"the file is {size:,} bytes; a plan may be at most "
                             f"{MAX_BYTES:,} bytes (1 MiB)")
    _check_depth(text)
    loader = _fast_loader()(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node)
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def _check_depth(text: str) -> None:
    """Depth and value count from the event stream, stopping at the first limit passed;
    libyaml's parser where it is built in (a 1 MiB list takes PyYAML's own parser many
    seconds).  libyaml refuses some text PyYAML reads (past its own depth of 1,000, say):
    then PyYAML's parser scans it.  Text neither reads is left to the loader, which says
    why."""
    loaders: list[type[Any]] = list(dict.fromkeys((_fast_loader(), yaml.SafeLoader)))
    for loader in loaders:
        try:
            _scan(text, loader)
            return
        except yaml.YAMLError:
            continue


def _scan(text: str, loader: type[Any]) -> None:
    depth = values = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.NodeEvent) and not isinstance(event, yaml.AliasEvent):
            values += 1
            if values > MAX_VALUES:
                raise YamlLimitError(f"more than {MAX_VALUES:,} values", _line(event))
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep",
                                     _line(event))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _fast_loader() -> type[Any]:
    return yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


def _check_expansion(root: yaml.Node) -> None:
    """Each node's expanded (values, depth), memoised by identity; an iterative walk, so
    a deep graph costs no Python stack."""
    done: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in done:
            continue
        kids = _children(node)
        if not children_done and isinstance(node, yaml.MappingNode):
            _check_unique_keys(node)
        if not children_done:
            if key in open_:
                raise YamlLimitError("an alias refers to a value that contains it (a cycle)",
                                     node.start_mark.line + 1)
            open_.add(key)
            stack.append((node, True))
            for kid in kids:
                if id(kid) in open_ and id(kid) not in done:
                    raise YamlLimitError("an alias refers to a value that contains it "
                                         "(a cycle)", kid.start_mark.line + 1)
                if id(kid) not in done:
                    stack.append((kid, False))
            continue
        values = 1 + sum(done[id(k)][0] for k in kids)
        depth = 1 + max((done[id(k)][1] for k in kids), default=0)
        if values > MAX_VALUES:
            raise YamlLimitError(f"aliases expand to more than {MAX_VALUES:,} values",
                                 node.start_mark.line + 1)
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"aliases nest values more than {MAX_DEPTH} levels deep",
                                 node.start_mark.line + 1)
        open_.discard(key)
        done[key] = (values, depth)


def _check_unique_keys(node: yaml.MappingNode) -> None:
    """A key said twice in one mapping is refused: YAML's loader keeps the last silently,
    so a plan edited in two places would run on whichever came last."""
    seen: dict[str, int] = {}
    for key, _value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        line = key.start_mark.line + 1
        if key.value in seen:
            raise YamlLimitError(f"key {key.value!r} appears twice in one mapping (lines "
                                 f"{seen[key.value]} and {line}): keep one", line)
        seen[key.value] = line


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
