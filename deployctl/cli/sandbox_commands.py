"""``deployctl sandbox up|status|env|image|mark|restart|down``: the local lab the demo and the tests run against.

Every command but ``up`` takes ``--sandbox DIR``, else means the configuration's own, else ``$DEPLOYCTL_SANDBOX``.
``status`` and ``env`` (they only read it) then fall back to the one this user started last, and say so;
``image``, ``mark``, ``restart`` and ``down`` (they change or stop it) never act on that guess (``sandbox.where``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from deployctl.cli.root import cli
from deployctl.cli.session import Session
from deployctl.core.errors import ConfigError, ExitCode, UsageError

if TYPE_CHECKING:
    from deployctl.config import LoadedConfig
    from deployctl.sandbox.where import Located

# deployctl.sandbox.control_plane.BEHAVIOURS (not imported: --help stays fast; a test keeps them equal)
BEHAVIOURS = ("crashloop", "oom", "pull-error", "not-ready", "fail")
HTTP_BEHAVIOURS = ("http-500", "http-503")  # the build's pods run, but answer HTTP with this status (http_standin)

SANDBOX = click.option(
    "--sandbox",
    "sandbox_dir",
    type=click.Path(path_type=Path, file_okay=True),
    metavar="DIR",
    help="The sandbox's directory (or the repository `sandbox up` ran in). Default: this repository's, "
    "else $DEPLOYCTL_SANDBOX.",
)


def _config_here(session: Session) -> LoadedConfig | None:
    """The configuration of this directory, if there is one: the sandbox commands also work elsewhere."""
    try:
        return session.plain_config()
    except ConfigError:
        if session.config_option is not None:
            raise  # a --config that does not load is an error, not "no configuration"
        return None


def _located(session: Session, located: Located) -> Path:
    """The state file found; when it was the one started last (a guess), a line on stderr says which."""
    if located.guessed:
        session.console.progress(f"sandbox: using {located.found_by}, in {located.path.parent} (none runs for here)")
    return located.path


@cli.group("sandbox")
def sandbox_group() -> None:
    """A local stand-in for AWS, the registry and the cluster (moto, OCI registries, kube-apiserver + kwok)."""


@sandbox_group.command("up")
@click.option("--registries", default=2, show_default=True, type=click.IntRange(1, 5), help="Registry instances.")
@click.option(
    "--only",
    "components",
    multiple=True,
    type=click.Choice(["moto", "registry", "cluster", "metrics"]),
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
@SANDBOX
@click.pass_obj
def sandbox_status(session: Session, sandbox_dir: Path | None) -> int:
    """Probe each sandbox component and show its endpoint (exit 1 when one is unhealthy or it is down).

    \b
    Example: deployctl sandbox status --output json
    """
    from deployctl.sandbox.session import status
    from deployctl.sandbox.where import locate

    session.command = "sandbox status"
    result = status(_located(session, locate(_config_here(session), sandbox_dir)))
    return session.emit(result, ExitCode.OK if result.healthy else ExitCode.FAILED)


@sandbox_group.command("env")
@SANDBOX
@click.pass_obj
def sandbox_env(session: Session, sandbox_dir: Path | None) -> int:
    """Print `export K=V` lines that point later deployctl, terraform, helm and kubectl runs at the sandbox.

    When no sandbox runs, it says so (exit 2) and still exports DEPLOYCTL_SANDBOX naming the missing state,
    so the commands that follow refuse instead of reaching real AWS.

    \b
    Example: eval "$(deployctl sandbox env)"
    """
    from deployctl.sandbox.session import env, guard_exports
    from deployctl.sandbox.where import locate

    session.command = "sandbox env"
    config = _config_here(session)
    path = _located(session, locate(config, sandbox_dir))
    try:
        result = env(path, config)
    except UsageError:
        if not session.console.json:
            click.echo("\n".join(guard_exports(path)))
        raise
    return session.emit(result)


@sandbox_group.command("image")
@click.argument("app")
@click.option(
    "--commit",
    "ref",
    default="HEAD",
    show_default=True,
    metavar="REF",
    help="The commit the image stands for: its full sha is the tag `deploy` resolves.",
)
@click.option(
    "--behaviour",
    type=click.Choice(BEHAVIOURS),
    help="A broken build: mark its digest in the sandbox (as `sandbox mark` does) so its pods fail this way.",
)
@SANDBOX
@click.pass_obj
def sandbox_image(session: Session, app: str, ref: str, behaviour: str | None, sandbox_dir: Path | None) -> int:
    """Push a small runnable image of APP for a commit to the sandbox, tagged with the commit's full sha (what
    `deploy` resolves), in the repository the sandbox points the app's image at; prints its tag and digest.

    \b
    Example: deployctl sandbox image api --commit HEAD
    """
    from deployctl.sandbox.app_image import push

    session.command = "sandbox image"
    pushed = push(session.plain_config(), app, runner=session.runner, ref=ref, behaviour=behaviour, sandbox=sandbox_dir)
    return session.emit(pushed)


@sandbox_group.command("mark")
@click.argument("marker", metavar="DIGEST")
@click.argument("behaviour", type=click.Choice(BEHAVIOURS + HTTP_BEHAVIOURS), default="crashloop")
@SANDBOX
@click.pass_obj
def sandbox_mark(session: Session, marker: str, behaviour: str, sandbox_dir: Path | None) -> int:
    """Make the sandbox's pods whose image contains DIGEST (or any marker text) fail as BEHAVIOUR from now on.

    crashloop: CrashLoopBackOff; oom: the same, OOMKilled; pull-error: ImagePullBackOff; not-ready: running,
    never ready; fail: exits 1 (a Job's pod fails); http-500, http-503: ready, but its Services answer HTTP with
    that status (what HTTP checks see). The stand-in for "this build is broken". It changes the lab
    for everyone using it, so, like restart and down, it acts only on this repository's sandbox,
    $DEPLOYCTL_SANDBOX's or --sandbox DIR's, never on the one started last.

    \b
    Example: deployctl sandbox mark sha256:3cead38ca1f2 crashloop
    """
    from deployctl.sandbox.session_marks import mark_image

    session.command = "sandbox mark"
    return session.emit(mark_image(_config_here(session), marker, behaviour, sandbox=sandbox_dir))


@sandbox_group.command("restart")
@click.argument("component")
@SANDBOX
@click.pass_obj
def sandbox_restart(session: Session, component: str, sandbox_dir: Path | None) -> int:
    """Restart one COMPONENT of the running sandbox (a name from `sandbox status`) on the same ports, keeping
    its data: the registries keep their images, etcd the cluster. moto keeps its state in memory only.

    \b
    Example: deployctl sandbox restart kube-apiserver
    """
    from deployctl.sandbox.session_marks import restart

    session.command = "sandbox restart"
    return session.emit(restart(_config_here(session), component, sandbox=sandbox_dir))


@sandbox_group.command("down")
@SANDBOX
@click.pass_obj
def sandbox_down(session: Session, sandbox_dir: Path | None) -> int:
    """Stop every sandbox process and remove its directory (.deployctl/sandbox/): this repository's, or --sandbox DIR.

    \b
    Example: deployctl sandbox down
    """
    from deployctl.sandbox.session import down
    from deployctl.sandbox.where import locate_own

    session.command = "sandbox down"
    config = _config_here(session)
    return session.emit(down(locate_own(config, sandbox_dir), config))
