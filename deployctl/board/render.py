"""The release board drawn, pure: one self-contained HTML page (inline CSS and SVG, no script, no external
asset) and the same content as Markdown for CI job summaries. Every value is escaped; the HTML carries
``data-*`` attributes (env, app, release, digest, outcome) so a test can read the rendered page.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from deployctl.board.model import Board, BoardEvent, Cell, Column, Waiting

COLORS = {
    "healthy": "#1a7f37",
    "succeeded": "#1a7f37",
    "unhealthy": "#cf222e",
    "failed": "#cf222e",
    "unknown": "#bc4c00",
    "interrupted": "#bc4c00",
    "in-progress": "#0969da",
    "unreachable": "#9a6700",
    "absent": "#8c959f",
}
MARKS = {"healthy": "✅", "unhealthy": "❌", "absent": "⚪", "unreachable": "⚠️"}
OUTCOME_MARKS = {"succeeded": "✅", "failed": "❌", "unknown": "❓", "interrupted": "⏹️", "in-progress": "⏳"}

STYLE = """
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 10px; } h3 { font-size: 15px; margin: 0; }
.meta, .muted { color: var(--muted); }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--bg); padding: 1px 4px;
  border-radius: 4px; }
table.grid { border-collapse: separate; border-spacing: 0; width: 100%; table-layout: fixed; }
.grid th, .grid td { border: 1px solid var(--line); padding: 8px 10px; vertical-align: top; text-align: left; }
.grid thead th { background: var(--bg); }
.grid th[scope=row] { background: var(--bg); } .grid thead th:first-child { width: 130px; }
.grid thead .muted, .grid thead .problem { font-weight: 400; font-size: 12px; }
.cell { border-left: 4px solid var(--line) !important; }
.cell .top { display: flex; align-items: center; gap: 6px; font-weight: 600; }
.cell div { margin-top: 2px; overflow-wrap: anywhere; }
.verdict { font-size: 12px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 11px; font-weight: 600;
  color: #fff; background: var(--muted); vertical-align: 1px; }
.freeze.frozen { background: #cf222e; } .freeze.open { background: #1a7f37; }
.drift { font-size: 12px; } .drift.differs { color: #cf222e; font-weight: 600; }
.timelines { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 16px; }
.timeline { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.timeline ol { list-style: none; margin: 8px 0 0; padding: 0; }
.event { padding: 4px 0 4px 10px; border-left: 3px solid var(--line); margin-bottom: 4px; }
.event.failed { border-left-color: #cf222e; background: #fff1f0; }
.event .msg { display: block; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.problem { color: #9a6700; font-weight: 600; }
ul.waiting li { margin-bottom: 4px; }
"""


def short(digest: str | None) -> str:
    """``sha256:`` and the first 12 hex digits (as the CLI shows digests)."""
    return digest[:19] if digest else "-"


def when(stamp: str | None) -> str:
    """``2026-11-22T10:31:12.123456+00:00`` -> ``2026-11-22 10:31 UTC``."""
    return f"{stamp[:10]} {stamp[11:16]} UTC" if stamp else "-"


# ----------------------------------------------------------------------------------------------- HTML


def html(board: Board) -> str:
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>Release board</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        "<header><h1>Release board</h1>",
        f'<p class="meta">generated {escape(when(board.generated_at))} · {_count(len(board.apps), "app")} · '
        f"{_count(len(board.columns), 'environment')}</p></header>\n",
        _grid(board),
        '<h2 id="timeline">Recent rollouts</h2>\n<div class="timelines">\n',
        *(_timeline(column) for column in board.columns),
        "</div>\n",
        _waiting(board.waiting),
        *(f'<p class="muted note">{escape(note)}</p>\n' for note in board.notes),
        "</body>\n</html>\n",
    ]
    return "".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _dot(state: str, size: int = 12, title: str = "") -> str:
    radius = size / 2 - 1
    label = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<svg width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" aria-label="{escape(state)}">'
        f'{label}<circle cx="{size / 2}" cy="{size / 2}" r="{radius}" fill="{COLORS.get(state, "#8c959f")}"/></svg>'
    )


def _grid(board: Board) -> str:
    head = "".join(
        f'<th scope="col" data-env="{escape(c.env)}">{escape(c.env)} '
        f'<span class="badge freeze {"frozen" if c.frozen else "open"}" title="{escape(c.freeze)}">'
        f"{'frozen' if c.frozen else 'open'}</span>"
        + (f'<div class="muted">promoted from {escape(c.promote_from)}</div>' if c.promote_from else "")
        + (f'<div class="problem">{escape(c.problem)}</div>' if c.problem else "")
        + (f'<div class="muted freeze-detail">{escape(c.freeze)}</div>' if c.frozen else "")
        + "</th>"
        for c in board.columns
    )
    rows = []
    for app in board.apps:
        cells = "".join(_cell(board.cell(c.env, app)) for c in board.columns)
        rows.append(f'<tr data-app="{escape(app)}"><th scope="row">{escape(app)}</th>{cells}</tr>\n')
    return (
        '<h2 id="grid">What runs where</h2>\n<table class="grid">\n'
        f'<thead><tr><th scope="col">app</th>{head}</tr></thead>\n<tbody>\n{"".join(rows)}</tbody>\n</table>\n'
    )


def _data_attributes(pairs: Iterable[tuple[str, str | None]]) -> str:
    """``data-KEY="value"`` attributes (escaped) the browser test reads the page by."""
    return " ".join(f'data-{k}="{escape(v or "")}"' for k, v in pairs)


def _cell(cell: Cell) -> str:
    attrs = _data_attributes(
        (
            ("env", cell.env),
            ("app", cell.app),
            ("state", cell.state),
            ("release", cell.release),
            ("digest", cell.digest),
            ("commit", cell.commit),
            ("drift", cell.drift),
        )
    )
    color = COLORS.get(cell.state, "#8c959f")
    release = f'<span class="release">{escape(cell.release or "-")}</span>'
    lines = [f'<div class="top">{_dot(cell.state, title=cell.state)}{release}</div>']
    if cell.digest:
        lines.append(
            f'<div><code class="digest" title="{escape(cell.digest)}">{escape(short(cell.digest))}</code></div>'
        )
    if cell.commit:
        subject = f" {escape(cell.subject)}" if cell.subject else ""
        lines.append(f'<div class="commit"><code>{escape(cell.commit[:7])}</code>{subject}</div>')
    if cell.deployed_at:
        lines.append(
            f'<div class="when muted">{escape(when(cell.deployed_at))} · {escape(cell.deployed_by or "?")}</div>'
        )
    lines.append(f'<div class="verdict" style="color: {color}">{escape(cell.verdict)}</div>')
    if cell.checks:
        lines.append(f'<div class="checks muted">{escape(cell.checks[:200])}</div>')
    if cell.drift != "unknown":
        drift = escape(cell.drift)
        lines.append(f'<div class="drift {drift}" title="{escape(cell.drift_detail)}">values: {drift}</div>')
    style = f"border-left-color: {color} !important"
    return f'<td class="cell {escape(cell.state)}" style="{style}" {attrs}>{"".join(lines)}</td>'


def _timeline(column: Column) -> str:
    events = column.timeline
    strip = _strip(events)
    items = "".join(_event(e) for e in events) or '<li class="muted">no rollouts recorded</li>'
    problem = f'<p class="problem">{escape(column.problem)}</p>' if column.problem else ""
    return (
        f'<section class="timeline" data-env="{escape(column.env)}"><h3>{escape(column.env)}</h3>{problem}'
        f"{strip}<ol>{items}</ol></section>\n"
    )


def _strip(events: tuple[BoardEvent, ...]) -> str:
    """Oldest left, newest right: one dot per rollout on a line, failures red."""
    if not events:
        return ""
    step, width = 22, 22 * len(events) + 8
    dots = "".join(
        f'<circle cx="{12 + i * step}" cy="12" r="7" fill="{COLORS.get(e.outcome, "#8c959f")}">'
        f"<title>{escape(f'{when(e.time)} {e.action} {e.app} {e.outcome}')}</title></circle>"
        for i, e in enumerate(reversed(events))
    )
    return (
        f'<svg class="strip" width="{width}" height="24" viewBox="0 0 {width} 24" role="img" '
        f'aria-label="{len(events)} rollouts, oldest first">'
        f'<line x1="12" y1="12" x2="{width - 12}" y2="12" stroke="#d1d9e0" stroke-width="2"/>{dots}</svg>'
    )


def _event(event: BoardEvent) -> str:
    attrs = _data_attributes(
        (
            ("env", event.env),
            ("app", event.app),
            ("action", event.action),
            ("outcome", event.outcome),
            ("release", event.release),
            ("digest", event.digest),
        )
    )
    label = escape(event.outcome.upper() if event.failed else event.outcome)
    badge = f'<span class="badge" style="background: {COLORS.get(event.outcome, "#8c959f")}">{label}</span>'
    what = f"{escape(event.action)} {escape(event.app)}"
    if event.release:
        what += f" {escape(event.release)}"
    digest = f' <code title="{escape(event.digest)}">{escape(short(event.digest))}</code>' if event.digest else ""
    said = event.message.splitlines()[0] if event.message and event.outcome != "succeeded" else ""
    message = "; ".join(m for m in (said, *event.overrides, event.checks if not said else "") if m)
    detail = f'<span class="msg">{escape(message[:300])}</span>' if message else ""
    return (
        f'<li class="event{" failed" if event.failed else ""}" {attrs}><time datetime="{escape(event.time)}">'
        f"{escape(when(event.time))}</time> {badge} {what}{digest} <span class=\"muted\">by {escape(event.by)}</span>"
        f"{detail}</li>"
    )


def _waiting(waiting: Iterable[Waiting]) -> str:
    items = "".join(
        f'<li data-env="{escape(w.env)}" data-kind="{escape(w.kind)}" data-app="{escape(w.app or "")}">'
        f"<strong>{escape(w.env)}</strong>: "
        + (f"{escape(w.app)} " if w.app else "")
        + f"<code>{escape(short(w.what) if w.kind == 'digest' else w.what)}</code> {escape(w.detail)}</li>"
        for w in waiting
    )
    body = (
        f'<ul class="waiting">{items}</ul>'
        if items
        else '<p class="muted">Nothing waits: every tagged release and every verified digest is promoted.</p>'
    )
    return f'<h2 id="waiting">Waiting</h2>\n{body}\n'


# ----------------------------------------------------------------------------------------------- Markdown
