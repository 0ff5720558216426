"""An environment's values file (``values-prod.yaml``): the one reader and editor of it.

One file per environment, one section per app (``api:``, ``worker:``); each chart is given only its
own section. A repository with a single app may keep the whole file as that app's values (no section). A
section that names no app (``fetchr:``) is an error, never silently ignored.
Edits go through ``yamledit``: only the edited values' characters change (comments, layout, CRLF and
``---`` kept), and an edit is returned as a unified diff so it can be shown before (and instead of,
with ``--dry-run``) writing. A malformed file is a usage error (exit 2) naming the file.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.core.errors import UsageError
from deployctl.release import yamledit

KeyPath = tuple[str, ...]
_parsed: dict[str, tuple[str, dict[str, Any]]] = {}  # path -> (its text, that text parsed): see ``mapping``


@dataclass(frozen=True)
class ValuesEdit:
    """A values file's edit: its text before and after, applied only when written."""

    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def diff(self) -> str:
        name = self.path.name
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )

    def write(self) -> None:
        if self.changed:
            tmp = self.path.with_name(f".{self.path.name}.deployctl-tmp")
            tmp.write_bytes(self.after.encode("utf-8"))  # bytes: CRLF stays CRLF
            tmp.replace(self.path)


@dataclass(frozen=True)
class ValuesFile:
    """One environment's values file; ``setting`` names the configuration key that points at it."""

    path: Path
    setting: str = "values"

    def exists(self) -> bool:
        return self.path.is_file()

    def require(self) -> None:
        if not self.exists():
            raise UsageError(
                f"values file {self.path} ({self.setting}) does not exist",
                f"create it, or fix {self.setting} in the configuration",
            )

    def text(self) -> str:
        try:
            return self.path.read_bytes().decode("utf-8")  # not read_text: it would turn CRLF into LF
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read: {exc.strerror}", f"check {self.setting}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{self.path}: not UTF-8 text", "save the file as UTF-8") from None

    def mapping(self) -> dict[str, Any]:
        """The whole document as plain data (an empty mapping when the file does not exist). The file is read each
        time; its parse is kept while its text stays the same (issue 29: a section costs three reads, every app
        several sections, and ruamel's round-trip parse was a fifth of a 10-app promotion's CPU)."""
        if not self.exists():
            return {}
        text = self.text()
        key = str(self.path)
        found = _parsed.get(key)
        if found is None or found[0] != text:
            found = (text, _plain(yamledit.load(text, key)))
            _parsed[key] = found
        plain: dict[str, Any] = copy.deepcopy(found[1])  # callers may change what they get
        return plain

    def section_path(self, app: str, apps: Collection[str]) -> KeyPath:
        """Where ``app``'s values are: its own top-level section, or the whole file when it is the only app
        and the file has no section named after it."""
        doc = self.mapping()
        if isinstance(doc.get(app), Mapping):
            return (app,)
        if len(apps) == 1:
            return ()
        return (app,)

    def problems(self, apps: Collection[str]) -> list[str]:
        """The top-level keys of a file with sections that name no app: no chart would ever be given them. A file
        has sections when several apps are configured, or when one of its top-level keys names an app; otherwise
        (one app, no section named after it) the whole file is that app's values and its keys are chart values."""
        doc = self.mapping()
        if len(apps) == 1 and not any(isinstance(doc.get(app), Mapping) for app in apps):
            return []
        found = []
        for key in doc:
            if key in apps:
                continue
            close = difflib.get_close_matches(key, list(apps), n=1, cutoff=0.6)
            fix = f"did you mean {close[0]!r}?" if close else f"apps: {', '.join(apps)}"
            found.append(f"{self.path}: section {key!r} matches no app ({fix})")
        return found

    def check(self, apps: Collection[str]) -> None:
        """Raise a usage error naming every section that matches no app (``problems``)."""
        found = self.problems(apps)
        if found:
            raise UsageError(
                found[0]
                if len(found) == 1
                else f"{len(found)} sections of {self.path.name} match no app:\n  " + "\n  ".join(found),
                f"rename or remove {'it' if len(found) == 1 else 'them'}: each top-level key of {self.path.name} is "
                f"the values of the app it names ({self.setting})",
            )

    def section(self, app: str, apps: Collection[str]) -> dict[str, Any]:
        """``app``'s values (empty when the file has none for it); a section that matches no app is an error."""
        self.check(apps)
        node: Any = self.mapping()
        for key in self.section_path(app, apps):
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            raise UsageError(f"{self.path}: {app} must be a mapping (the app's values)", "fix the file")
        return dict(node)

    def edit(self, changes: Mapping[KeyPath, str]) -> ValuesEdit:
        """The edit that sets each key path to its value (not written; call ``.write()``)."""
        before = self.text()
        return ValuesEdit(self.path, before, yamledit.set_values(before, changes, str(self.path)))


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes (quoted strings, commented maps, scalar ints) as plain Python data."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    for kind in (bool, str, int, float):  # bool before int: True is an int
        if isinstance(node, kind):
            return kind(node)
    return node
