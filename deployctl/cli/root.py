"""The ``deployctl`` group, its global options, and the commands that act on no environment's resources."""

from __future__ import annotations

import os

import click

from deployctl import __version__
from deployctl.cli.command_table import COMMANDS as _TABLE
from deployctl.cli.lazy import LazyGroup
from deployctl.cli.options import add_global_options
from deployctl.cli.session import ENV, Session

# The commands other modules define (click-free, so the fast path reads it too; tests read it here).
COMMANDS = _TABLE


# Every command gets the global options when it is first looked up: `deployctl status prod -o json` as well
# as `deployctl -o json status prod`.
@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    prepare=add_global_options,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Configuration file (default: $DEPLOYCTL_CONFIG, else the nearest pyproject.toml upward).",
)
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", count=True, help="-v: tool output and progress; -vv: debug and tracebacks.")
@click.option("--no-color", is_flag=True, help="No ANSI colours (also when NO_COLOR is set).")
@click.version_option(__version__, "--version", prog_name="deployctl", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, output: str, verbose: int, no_color: bool) -> None:
    """Plan, apply, deploy and promote a Terraform + Helm app on EKS, one command per step.

    \b
    Example:
      deployctl plan dev && deployctl apply dev && deployctl deploy dev
      deployctl promote release-1.4.0
    """
    session: Session = ctx.ensure_object(Session)
    session.config_option = config_path
    session.console.output = output
    session.console.verbosity = verbose
    session.console.color = not no_color and "NO_COLOR" not in os.environ
    session.console.setup_logging()
    session.command = ctx.invoked_subcommand


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.argument("env", type=ENV, required=False)
@click.pass_obj
def config_show(session: Session, env: str | None) -> int:
    """Show the resolved configuration, for all environments or one.

    \b
    Example: deployctl config show prod
    """
    from deployctl.app.config_show import show

    session.command = "config show"
    return session.emit(show(session.config, env))


@cli.command()
@click.option("--no-config", is_flag=True, help="Check tools only; do not load the configuration.")
@click.pass_obj
def doctor(session: Session, no_config: bool) -> int:
    """Check installed tools and their versions, and that each environment's endpoint is reachable.

    Exit 2 when a tool is missing or too old, else 1 when an endpoint is unreachable.

    \b
    Example: deployctl doctor --output json
    """
    from deployctl.app.doctor import doctor as run_doctor

    config = None if no_config else session.config
    result = run_doctor(session.runner, config)
    return session.emit(result, result.exit_code)


@cli.group("ci")
def ci_group() -> None:
    """The pipeline's logic, for the workflow YAML to call."""


@ci_group.command("steps")
@click.option("--event", required=True, help="CI event: pull_request, push or workflow_dispatch.")
@click.option("--ref", required=True, help="Git ref, e.g. refs/heads/main or refs/tags/release-1.4.0.")
@click.pass_obj
def ci_steps(session: Session, event: str, ref: str) -> int:
    """Print the steps the pipeline runs for an event and ref.

    \b
    Example: deployctl ci steps --event push --ref refs/tags/release-1.4.0 -o json
    """
    from deployctl.app.routing import ci_steps as run_ci_steps

    session.command = "ci steps"
    return session.emit(run_ci_steps(session.routing, event, ref))


@ci_group.command("release-tag")
@click.option("--push", is_flag=True, help="Create the tag on HEAD (a commit of main) and push it.")
@click.pass_obj
def ci_release_tag(session: Session, push: bool) -> int:
    """The version-bump route: tag a new project.version as the release (release_on_version_bump).

    \b
    Example: deployctl ci release-tag -o json
    """
    from deployctl.app.ci import release_tag

    session.command = "ci release-tag"
    return session.emit(release_tag(session.config, session.runner, push=push))


@ci_group.command("github-apply")
@click.option("--repo", "repository", metavar="OWNER/NAME", help="The repository (default: $GITHUB_REPOSITORY).")
@click.option(
    "--settings",
    "settings_dir",
    metavar="DIR",
    help="The settings to apply (default: .github/settings beside the configuration file).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 3 when GitHub differs from the files.")
@click.pass_obj
def ci_github_apply(session: Session, repository: str | None, settings_dir: str | None, check: bool) -> int:
    """Make GitHub's environments, rulesets and OIDC subject what .github/settings says (only what differs).

    The token comes from $GITHUB_TOKEN (or $GH_TOKEN; e.g. GITHUB_TOKEN=$(gh auth token)): a repository admin's,
    never printed. --check writes nothing and exits 3 when GitHub differs.

    \b
    Example: deployctl ci github-apply --repo acme/api --check
    """
    from pathlib import Path

    from deployctl.adapters import github_settings
    from deployctl.adapters.github import DEFAULT_API, TOKEN_HINT, GitHubApi
    from deployctl.app.github_apply import github_apply
    from deployctl.config.locate import ConfigProblemsError, find_config
    from deployctl.core.errors import ConfigError, ExitCode, UsageError

    session.command = "ci github-apply"
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise UsageError("no GitHub token: GITHUB_TOKEN (or GH_TOKEN) is not set", TOKEN_HINT)
    session.console.redactor.add(token)
    repository = repository or os.environ.get("GITHUB_REPOSITORY")
    if not repository:
        raise UsageError("which repository? no --repo and no GITHUB_REPOSITORY", "pass --repo OWNER/NAME")
    if settings_dir is None:
        try:
            root = find_config(Path.cwd(), session.config_option).parent
        except ConfigProblemsError as exc:
            raise ConfigError(exc.problems, exc.hint) from None
        directory = root / ".github" / "settings"
    else:
        directory = Path(settings_dir)
    settings = github_settings.load(directory)
    api = GitHubApi(os.environ.get("GITHUB_API_URL") or DEFAULT_API, token)
    result = github_apply(api, settings, repository, check=check)
    return session.emit(result, ExitCode.CHANGES if check and result.changes else ExitCode.OK)


@cli.command("eks-token", hidden=True)
@click.argument("env", type=ENV)
@click.option("--cluster", "cluster_name", metavar="NAME", help="One of ENV's several clusters (clusters.NAME).")
@click.pass_obj
def eks_token(session: Session, env: str, cluster_name: str | None) -> int:
    """Print an ExecCredential with a fresh EKS token for ENV's cluster (the kubeconfig deployctl writes runs it).

    \b
    Example: deployctl eks-token prod
    """
    import json

    from deployctl.adapters import eks
    from deployctl.core.errors import UsageError

    session.command = "eks-token"
    ctx = session.env(env)
    cluster = ctx.env.clusters.get(cluster_name) if cluster_name else ctx.env.cluster
    if cluster is None or cluster.eks is None:
        raise UsageError(f"environment {env!r} has no EKS cluster (cluster.eks)", "only EKS clusters use tokens")
    region = getattr(cluster, "region", None) or ctx.env.aws.region  # a token is signed in the cluster's region
    # Printed raw, never through the console: this is the credential protocol, read by helm and kubectl.
    click.echo(json.dumps(eks.exec_credential(eks.token(ctx.aws_in(region), cluster.eks))))
    return 0
