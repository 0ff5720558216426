"""Set scalar values at key paths in YAML text, changing only the characters of those values.

A values file is reviewed in pull requests: an edit must show as exactly the lines it changed, with
the file's line ends (CRLF), document start (``---``), indentation, comments and quoting intact.
ruamel.yaml finds where each value is (line and column); the new value replaces the old one's
characters on that line, in the old value's quoting style. Only a key that does not exist yet needs
the document re-emitted (ruamel's round trip, then the file's line ends and document start restored).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from deployctl.core.errors import UsageError

Path_ = tuple[str, ...]


def load(text: str, label: str) -> Any:
    """The document as ruamel's round-trip mapping; a usage error (exit 2) naming the file otherwise."""
    from ruamel.yaml.error import YAMLError

    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        raise UsageError(syntax_error(exc, label), f"fix the syntax there ({label.rsplit('/', 1)[-1]})") from None
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise UsageError(f"{label}: the top level must be a mapping", "fix the file, then re-run")
    return doc


def syntax_error(exc: Exception, label: str) -> str:
    """``values.yaml:3:2: invalid YAML: <what> (<while doing what> at line 1)``: the position first, 1-based, as
    the TOML errors of the configuration say it."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or not problem:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{label}: invalid YAML: {first}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    where = f" ({context} that starts at line {start.line + 1})" if context and start is not None else ""
    return f"{label}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}{where}"


def set_values(text: str, changes: Mapping[Path_, str], label: str = "values") -> str:
    """``text`` with each key path in ``changes`` set to its string value."""
    doc = load(text, label)
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(eol)
    for path, value in changes.items():
        place = _place(doc, path, label)
        if place is None:
            return _reemit(text, doc, changes, label, eol)
        line, col = place
        end, quote = _scalar_end(lines[line], col)
        if end is None:
            return _reemit(text, doc, changes, label, eol)  # a scalar spanning lines: let ruamel write it
        lines[line] = lines[line][:col] + _render(value, quote) + lines[line][end:]
    edited = eol.join(lines)
    load(edited, label)  # what was written must read back
    return edited


def _place(doc: Any, path: Path_, label: str) -> tuple[int, int] | None:
    """Line and column of the scalar at ``path``; None when a key on the path does not exist yet."""
    node = doc
    for depth, key in enumerate(path[:-1]):
        child = node.get(key)
        if child is None:
            return None
        if not isinstance(child, dict):
            raise UsageError(f"{label}: {'.'.join(path[: depth + 1])} must be a mapping", "fix the file, then re-run")
        node = child
    last = path[-1]
    if last not in node or node[last] is None:
        return None  # `key:` with nothing after it has no characters to replace
    if isinstance(node[last], dict | list):
        raise UsageError(f"{label}: {'.'.join(path)} must be a single value, not a block", "fix the file")
    line, col = node.lc.value(last)
    return int(line), int(col)


_PLAIN_END = re.compile(r"\s+#|\s*$")


def _scalar_end(line: str, col: int) -> tuple[int | None, str]:
    """Where the scalar starting at ``col`` ends on ``line``, and its quote (``"``, ``'`` or ``""``)."""
    quote = line[col] if col < len(line) and line[col] in "\"'" else ""
    if not quote:
        match = _PLAIN_END.search(line, col)
        return (match.start() if match else len(line)), ""
    index = col + 1
    while index < len(line):
        char = line[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and line[index + 1 : index + 2] == "'":
                index += 2  # '' is an escaped quote inside single quotes
                continue
            return index + 1, quote
        index += 1
    return None, quote


def _render(value: str, quote: str) -> str:
    if quote == "'":
        return "'" + value.replace("'", "''") + "'"
    if quote == '"' or not _plain_is_safe(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _plain_is_safe(value: str) -> bool:
    """Whether ``value`` written without quotes reads back as the same string."""
    import yaml

    try:
        return bool(value) and yaml.safe_load(f"k: {value}") == {"k": value}
    except yaml.YAMLError:
        return False


def _reemit(text: str, doc: Any, changes: Mapping[Path_, str], label: str, eol: str) -> str:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    for path, value in changes.items():
        node = doc
        for key in path[:-1]:
            if node.get(key) is None:
                node[key] = CommentedMap()
            node = node[key]
            if not isinstance(node, dict):
                raise UsageError(f"{label}: {'.'.join(path)}: a parent is not a mapping", "fix the file")
        node[path[-1]] = DoubleQuotedScalarString(value)
    yaml = _yaml()
    yaml.explicit_start = text.lstrip().startswith("---")
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue().replace("\n", eol)


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines (digests, comments)
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml
