"""``deployctl sandbox up|status|env|down``: the local lab the demo and the tests run against."""

from __future__ import annotations

import click

from deployctl.cli.root import cli
from deployctl.cli.session import Session
from deployctl.errors import ExitCode


@cli.group("sandbox")
def sandbox_group() -> None:
    """A local stand-in for AWS, the registry and the cluster (moto, OCI registries, kube-apiserver + kwok)."""


@sandbox_group.command("up")
@click.option("--registries", default=2, show_default=True, type=click.IntRange(1, 5), help="Registry instances.")
@click.option(
    "--only",
    "components",
    multiple=True,
    type=click.Choice(["moto", "registry", "cluster"]),
    help="Start only these components (repeatable; default: all).",
)
@click.pass_obj
def sandbox_up(session: Session, registries: int, components: tuple[str, ...]) -> int:
    """Start the sandbox in the background (survives this command); state in .deployctl/sandbox/.

    \b
    Example: deployctl sandbox up && eval "$(deployctl sandbox env)"
    """
    from deployctl.sandbox.lab import COMPONENTS
    from deployctl.sandbox.session import up

    session.command = "sandbox up"
    result = up(
        session.plain_config(),
        components=components or COMPONENTS,
        registries=registries,
        progress=session.console.progress,
    )
    return session.emit(result, ExitCode.OK if result.healthy else ExitCode.FAILED)


@sandbox_group.command("status")
@click.pass_obj
def sandbox_status(session: Session) -> int:
    """Probe each sandbox component and show its endpoint (exit 1 when one is unhealthy or it is down).

    \b
    Example: deployctl sandbox status --output json
    """
    from deployctl.sandbox.session import status

    session.command = "sandbox status"
    result = status(session.plain_config())
    return session.emit(result, ExitCode.OK if result.healthy else ExitCode.FAILED)


@sandbox_group.command("env")
@click.pass_obj
def sandbox_env(session: Session) -> int:
    """Print `export K=V` lines that point later deployctl, terraform, helm and kubectl runs at the sandbox.

    \b
    Example: eval "$(deployctl sandbox env)"
    """
    from deployctl.sandbox.session import env

    session.command = "sandbox env"
    return session.emit(env(session.plain_config()))


@sandbox_group.command("down")
@click.pass_obj
def sandbox_down(session: Session) -> int:
    """Stop every sandbox process and remove .deployctl/sandbox/.

    \b
    Example: deployctl sandbox down
    """
    from deployctl.sandbox.session import down

    session.command = "sandbox down"
    return session.emit(down(session.plain_config()))
