"""The start-up fast path (issue 20): ``deployctl --help`` and ``deployctl ci steps`` without importing click.

``import click`` alone costs more than ``helm --help``. Every pipeline run calls ``ci steps`` first, and
``--help`` is what a user types first, so these two are answered here, before the Click CLI is imported, for
EXACTLY these forms:

- ``deployctl --help`` and ``deployctl -h`` (nothing else on the line);
- ``deployctl ci steps --event E --ref R`` with ``--config PATH``, ``-o/--output text|json`` and ``--no-color``
  before or after ``ci`` or ``steps`` (``--opt VALUE`` or ``--opt=VALUE``; ``--event``/``--ref`` after ``steps``).

Anything else (another option, an unknown or malformed argument, ``$DEPLOYCTL_SANDBOX`` set, routing keys only
a full validation can read, any error at all) returns None and the caller runs the Click CLI, which does
everything itself, errors included; nothing is written before the answer is complete. So the output can never
differ from click's: tests/unit/test_fast_path.py runs both over a matrix of invocations and compares stdout,
stderr and exit code, and the help text with click's at every width.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING

from deployctl.cli.command_table import COMMANDS

if TYPE_CHECKING:
    import textwrap

# What ``deployctl.cli.root`` declares (its docstring, its options' help records, its own commands' first
# paragraph); tests/unit/test_fast_path.py keeps these equal to click's rendering.
USAGE_ARGS = "[OPTIONS] COMMAND [ARGS]..."
ROOT_HELP = """Plan, apply, deploy and promote a Terraform + Helm app on EKS, one command per step.

\b
Example:
  deployctl plan dev && deployctl apply dev && deployctl deploy dev
  deployctl promote release-1.4.0"""
OPTIONS = (
    ("--config PATH", "Configuration file (default: $DEPLOYCTL_CONFIG, else the nearest pyproject.toml upward)."),
    ("-o, --output [text|json]", "[default: text]"),
    ("-v, --verbose", "-v: tool output and progress; -vv: debug and tracebacks."),
    ("--no-color", "No ANSI colours (also when NO_COLOR is set)."),
    ("--version", "Show the version and exit."),
    ("-h, --help", "Show this message and exit."),
)
ROOT_COMMANDS = {
    "ci": "The pipeline's logic, for the workflow YAML to call.",
    "config": "Inspect the configuration.",
    "doctor": "Check installed tools and their versions, and that each environment's endpoint is reachable.",
}
MAX_WIDTH = 100  # the root's context_settings max_content_width
_VALUED = ("--config", "--output", "-o", "--event", "--ref")


def run(argv: list[str]) -> int | None:
    """The exit code when ``argv`` is a form answered here (its output written), else None, having written nothing."""
    try:
        text = help_text(help_width(MAX_WIDTH)) if argv in (["--help"], ["-h"]) else ci_steps(argv)
        if text is None:
            return None
        sys.stdout.write(text)
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 (any surprise: the Click CLI runs instead and reports it its own way)
        return None
    return 0


# --- ci steps ----------------------------------------------------------------------------------------------


def ci_steps(argv: list[str]) -> str | None:
    """What ``deployctl ci steps`` prints on stdout for ``argv`` when it succeeds, or None (not a form handled
    here, or routing needs the full configuration)."""
    parsed = parse_ci_steps(argv)
    if parsed is None or os.environ.get("DEPLOYCTL_SANDBOX"):
        return None  # the sandbox's overrides need the full configuration load
    event, ref, config, output = parsed
    from io import StringIO
    from pathlib import Path

    from deployctl.app.routing import ci_steps as route
    from deployctl.config.locate import find_config
    from deployctl.config.routing import read_routing
    from deployctl.console import Console

    routing = read_routing(find_config(Path.cwd(), config))
    if routing is None:
        return None
    out = StringIO()
    Console(output=output, out=out).result(route(routing, event, ref), ok=True)
    return out.getvalue()


def parse_ci_steps(argv: list[str]) -> tuple[str, str, str | None, str] | None:
    """(event, ref, --config, --output) of ``ci steps`` in the forms handled here, else None. A value given
    twice counts last, as with click (root options, then ``ci``'s, then ``steps``')."""
    values: dict[str, str] = {"--output": "text"}
    position = 0  # 0: before `ci`, 1: after `ci`, 2: after `steps`
    args = iter(argv)
    for arg in args:
        name, equals, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if position < 2 and arg == ("ci", "steps")[position]:
            position += 1
        elif arg == "--no-color":
            continue
        elif name in _VALUED and (equals or name == arg):
            found = value if equals else next(args, "")
            if not found or found.startswith("-") or (name in ("--event", "--ref") and position < 2):
                return None
            values["--output" if name == "-o" else name] = found
        else:
            return None
    if position < 2 or "--event" not in values or "--ref" not in values or values["--output"] not in ("text", "json"):
        return None
    return values["--event"], values["--ref"], values.get("--config"), values["--output"]


# --- --help: click's HelpFormatter (8.x) for the root group, over plain text ----------------------------


def help_width(max_width: int) -> int:
    """The width click's help formatter computes (``HelpFormatter``), without ``shutil.get_terminal_size``
    (shutil imports zlib, bz2 and lzma): ``$COLUMNS``, else the terminal on stdout, else 80 columns. The Click
    CLI's ``LazyGroup`` uses it too."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, max_width) - 2, 50)


def help_text(width: int) -> str:
    """``deployctl --help`` as click renders it at ``width`` (echo's newline included)."""
    prefix = "Usage: deployctl "  # the arguments fit to its right: the width is at least 50
    parts = [
        _wrap(USAGE_ARGS, width, prefix, " " * len(prefix)),
        "\n\n",
        _wrap_paragraphs(ROOT_HELP, width, "  "),
        "\n",
    ]
    rows = sorted([*((name, summary) for name, (_, summary) in COMMANDS.items()), *ROOT_COMMANDS.items()])
    limit = width - 6 - max(len(name) for name, _ in rows)
    for heading, entries in (("Options", list(OPTIONS)), ("Commands", [(n, _short(h, limit)) for n, h in rows])):
        parts += ["\n", f"{heading}:\n", *_definitions(entries, width, indent=2)]
    return "".join(parts).rstrip("\n") + "\n"  # click.echo(ctx.get_help())


def _definitions(rows: list[tuple[str, str]], width: int, *, indent: int) -> Iterator[str]:
    """``HelpFormatter.write_dl`` (col_max 30, col_spacing 2)."""
    first_col = min(max(len(term) for term, _ in rows), 30) + 2
    for term, text in rows:
        yield f"{'':>{indent}}{term}"
        if not text:
            yield "\n"
            continue
        yield " " * (first_col - len(term)) if len(term) <= first_col - 2 else "\n" + " " * (first_col + indent)
        lines = _wrap_paragraphs(text, max(width - first_col - 2, 10), "").splitlines()
        yield f"{lines[0]}\n" if lines else "\n"
        for line in lines[1:]:
            yield f"{'':>{first_col + indent}}{line}\n"


def _short(help_: str, limit: int) -> str:
    """click's ``_make_default_short_help`` (a first paragraph, no rewrap marker)."""
    words = help_.partition("\n\n")[0].split()
    for i, word in enumerate(words):
        if word.endswith(".") and (i == len(words) - 1 or not words[i + 1][0].islower()):
            words = words[: i + 1]
            break
    text = " ".join(words)
    if len(text) <= limit:
        return text
    if limit < 3:
        return "..."
    import textwrap  # here: only the help wraps text (``ci steps`` would pay for it on every pipeline run)

    return textwrap.shorten(text, limit, placeholder="...", break_on_hyphens=False).strip()


@cache
def _wrapper_class() -> type[textwrap.TextWrapper]:
    import textwrap

    class Wrapper(textwrap.TextWrapper):
        """click's ``_textwrap.TextWrapper`` on text without ANSI escapes: a long word is cut at the width."""

        def _handle_long_word(self, chunks: list[str], line: list[str], length: int, width: int) -> None:
            space_left = max(width - length, 1)
            if self.break_long_words:
                line.append(chunks[-1][:space_left])
                chunks[-1] = chunks[-1][space_left:]
            elif not line:
                line.append(chunks.pop())

    return Wrapper


def _wrap(text: str, width: int, initial: str, subsequent: str) -> str:
    """click's ``wrap_text`` without paragraphs."""
    wrapper = _wrapper_class()(width, initial_indent=initial, subsequent_indent=subsequent, replace_whitespace=False)
    return wrapper.fill(text.expandtabs())


def _wrap_paragraphs(text: str, width: int, indent: str) -> str:
    """click's ``wrap_text(..., preserve_paragraphs=True)``: paragraphs rewrapped, a ``\\b`` one kept as is."""
    paragraphs: list[tuple[int, bool, str]] = []
    lines: list[str] = []
    extra: int | None = None

    def flush() -> None:
        if lines:
            raw = lines[0].strip() == "\b"
            paragraphs.append((extra or 0, raw, "\n".join(lines[1:]) if raw else " ".join(lines)))
            lines.clear()

    for line in text.expandtabs().splitlines():
        if not line:
            flush()
            extra = None
            continue
        if extra is None:
            extra = len(line) - len(line.lstrip())
            line = line.lstrip()  # noqa: PLW2901 (click's loop)
        lines.append(line)
    flush()
    rendered = []
    for extra_indent, raw, paragraph in paragraphs:
        start = indent + " " * extra_indent
        if raw:
            rendered.append("\n".join(start + line for line in paragraph.splitlines()))
        else:
            rendered.append(_wrap(paragraph, width, start, start))
    return "\n\n".join(rendered)
