"""What a ledger key says of its entry, pure, and the questions a read answers from the keys alone.

Every read used to fetch the whole history, one GET per entry ever recorded (issue 29: a team's dev ledger gains
hundreds of entries a day). A key now names what a reader selects by, so the listing (which every read makes
anyway, to audit every version) decides which bodies to fetch:

    <time>-<id>.<app>.<action>.<outcome>.<digest12>.<intent>.json     (``-``: none)

A question (``Question``) takes the labels of the listing, newest first, and returns the keys whose bodies answer
it. Keys written before (``<time>-<id>.json``), or that this version cannot parse, name nothing: they are read
first, by every question, and labelled by their bodies, so a question sees every entry of the history. The
label is checked against the body it names (``mismatch``): a body that says otherwise is corrupt (a promotion
refuses). Every entry deployctl writes is named by its key, and no key can be rewritten or deleted unseen (Object
Lock, ``audit``), so each is found by every question it answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass

from deployctl.ledger.entry import Entry

NONE = "-"
_PART = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ID = re.compile(r"^[0-9A-Za-z]+$")
_DIGEST = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class Label:
    """What a key names of its entry (``digest``: the first 12 hex digits; ``""``: none)."""

    id: str
    app: str
    action: str
    outcome: str
    digest: str
    intent: str


Labeled = tuple[str, Label]  # a key and its label
Question = Callable[[Sequence[Labeled]], set[str]]  # the labels newest first -> the keys to read


def short(digest: str | None) -> str:
    """The 12 hex digits a key keeps of ``digest`` (``""``: no digest, or not one a key can name)."""
    hex_part = (digest or "").rpartition(":")[2][:12]
    return hex_part if _DIGEST.match(hex_part) else ""


def name_of(entry: Entry, stamp: str) -> str:
    """The key (after the environment's prefix) ``entry`` is written under; the plain ``<time>-<id>.json`` when a
    field cannot be named in a key (then every read fetches it, as before labels)."""
    plain = f"{stamp}-{entry.id}.json"
    parts = [entry.app, entry.action, entry.outcome]
    digest = short(entry.digest)
    if not all(_PART.match(p) for p in parts) or (entry.digest and not digest) or not _ID.match(entry.id):
        return plain
    if entry.intent and not _ID.match(entry.intent):
        return plain
    return f"{stamp}-{entry.id}." + ".".join([*parts, digest or NONE, entry.intent or NONE]) + ".json"


def label_of(key: str) -> Label | None:
    """The label of a key, or None: a key from before labels (or not one this version writes) names nothing."""
    name = key.rpartition("/")[2]
    if not name.endswith(".json"):
        return None
    parts = name[: -len(".json")].rsplit(".", 5)
    if len(parts) != 6:
        return None
    head, app, action, outcome, digest, intent = parts
    entry_id = head.rpartition("-")[2]
    if not (_ID.match(entry_id) and all(_PART.match(p) for p in (app, action, outcome))):
        return None
    if not (digest == NONE or _DIGEST.match(digest)) or not (intent == NONE or _ID.match(intent)):
        return None
    return Label(entry_id, app, action, outcome, "" if digest == NONE else digest, "" if intent == NONE else intent)


def label_from(entry: Entry) -> Label:
    """What a key names of ``entry`` (a key from before labels: what its body says, once read)."""
    return Label(entry.id, entry.app, entry.action, entry.outcome, short(entry.digest), entry.intent or "")


def mismatch(label: Label, entry: Entry) -> str | None:
    """Why the body ``entry`` is not the entry its key names, or None when it is."""
    said, found = astuple(label), astuple(label_from(entry))
    if said == found:
        return None
    fields = ("id", "app", "action", "outcome", "digest", "intent")
    pairs = zip(fields, said, found, strict=True)
    wrong = [f"{name} {key or NONE!r} but its body {body or NONE!r}" for name, key, body in pairs if key != body]
    return "its key names " + ", ".join(wrong) + " (a key that lies could hide an entry from a read)"


# ------------------------------------------------------------------------------------------------ questions


def of_apps(
    apps: Iterable[str], *, actions: Iterable[str] = (), outcomes: Iterable[str] = (), digest: str | None = None
) -> Question:
    """Every entry of ``apps`` (of ``actions``, ``outcomes``, ``digest`` only, when given)."""
    names, kinds, ends, want = set(apps), set(actions), set(outcomes), short(digest) if digest else None

    def keys(labeled: Sequence[Labeled]) -> set[str]:
        return {
            key
            for key, label in labeled
            if label.app in names
            and (not kinds or label.action in kinds)
            and (not ends or label.outcome in ends)
            and (want is None or label.digest == want)
        }

    return keys


def open_intents(app: str) -> Question:
    """The ``started`` entries of ``app`` that no entry completes: normally none, so nothing is fetched."""

    def keys(labeled: Sequence[Labeled]) -> set[str]:
        completed = {label.intent for _, label in labeled if label.intent}
        return {
            k for k, label in labeled if label.app == app and label.outcome == "started" and label.id not in completed
        }

    return keys


def since_digest(app: str, digest: str) -> Question:
    """What the evidence of ``app``'s ``digest`` reads (``promotion.evidence``): every entry of ``app`` from its
    first entry of ``digest`` on, and the intents they complete. An entry of the app before the digest's first
    one ends no period of it and never proves it; none of the digest: nothing (it was never rolled out there)."""
    want = short(digest)

    def keys(labeled: Sequence[Labeled]) -> set[str]:
        mine = [(k, label) for k, label in labeled if label.app == app]  # newest first
        first = max((i for i, (_, label) in enumerate(mine) if label.digest == want), default=None)
        if first is None:
            return set()
        return {k for k, _ in mine[: first + 1]}  # the intents they complete come with them (``Ledger.read``)

    return keys


def failures(apps: Iterable[str]) -> Question:
    """The entries of ``apps`` that may be failures (``promotion.evidence.failed``): failed, or judged unchanged."""
    names = set(apps)

    def keys(labeled: Sequence[Labeled]) -> set[str]:
        return {k for k, label in labeled if label.app in names and label.outcome in ("failed", "unchanged")}

    return keys


def either(*questions: Question) -> Question:
    """The keys any of ``questions`` reads."""

    def keys(labeled: Sequence[Labeled]) -> set[str]:
        return set().union(*(question(labeled) for question in questions))

    return keys
