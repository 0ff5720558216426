"""The release board as Markdown (a job summary, a pull request comment): the same cells as the HTML, one table."""

from __future__ import annotations

from deployctl.board.model import Board, Cell
from deployctl.board.render import MARKS, OUTCOME_MARKS, short, when


def markdown(board: Board) -> str:
    envs = [c.env + (" (frozen)" if c.frozen else "") for c in board.columns]
    lines = [
        "## Release board",
        "",
        f"_generated {when(board.generated_at)}_",
        "",
        "| app | " + " | ".join(_md(e) for e in envs) + " |",
        "| --- |" + " --- |" * len(envs),
    ]
    for app in board.apps:
        lines.append(f"| {_md(app)} | " + " | ".join(_md_cell(board.cell(c.env, app)) for c in board.columns) + " |")
    for column in board.columns:
        lines += ["", f"### {column.env}: recent rollouts", ""]
        if column.problem:
            lines.append(f"> ⚠️ {_md(column.problem)}")
        if column.frozen:
            lines.append(f"> ❄️ {_md(column.freeze)}")
        for e in column.timeline:
            mark = OUTCOME_MARKS.get(e.outcome, "•")
            outcome = f"**{e.outcome.upper()}**" if e.failed else e.outcome
            release = f" {e.release}" if e.release else ""
            digest = f" `{short(e.digest)}`" if e.digest else ""
            message = f" — {_md(e.message.splitlines()[0][:200])}" if e.message and e.failed else ""
            message = message or (f" — {_md(e.checks[:200])}" if e.checks else "")
            what = f"{e.action} {_md(e.app)}{_md(release)}{digest}"
            lines.append(f"- {mark} {when(e.time)} {outcome} {what} by {_md(e.by)}{message}")
        if not column.timeline:
            lines.append("- no rollouts recorded")
    lines += ["", "### Waiting", ""]
    for w in board.waiting:
        what = short(w.what) if w.kind == "digest" else w.what
        lines.append(f"- **{_md(w.env)}**: {_md(w.app + ' ') if w.app else ''}`{what}` {_md(w.detail)}")
    if not board.waiting:
        lines.append("Nothing waits: every tagged release and every verified digest is promoted.")
    lines += [f"_{_md(note)}_" for note in board.notes]
    return "\n".join(lines) + "\n"


def _md_cell(cell: Cell) -> str:
    parts = [MARKS.get(cell.state, ""), _md(cell.release or "-")]
    if cell.digest:
        parts.append(f"`{short(cell.digest)}`")
    if cell.commit:
        parts.append(f"`{cell.commit[:7]}`" + (f" {_md(cell.subject[:60])}" if cell.subject else ""))
    if cell.deployed_at:
        parts.append(f"· {when(cell.deployed_at)} by {_md(cell.deployed_by or '?')}")
    if cell.state == "unreachable":
        parts.append("· unreachable (below: why)")
    elif cell.state != "healthy":
        parts.append(f"· {_md(cell.verdict[:160])}")
    if cell.checks:
        parts.append(f"· {_md(cell.checks[:160])}")
    if cell.drift == "differs":
        parts.append(f"· **values differ** ({_md(cell.drift_detail)})")
    return " ".join(p for p in parts if p)


def _md(text: str) -> str:
    """Safe inside a Markdown table cell: pipes escaped, newlines and HTML angle brackets neutralised."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
