from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployctl.config import ConfigProblemsError, find_config, load

VALID = """
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = { registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com", repository = "api" }

[tool.deployctl.environments.shared]
aws = { region = "us-east-1" }
terraform = { root = "terraform/shared", backend = { bucket = "acme-tfstate", key = "shared/terraform.tfstate", region = "us-east-1" } }

[tool.deployctl.environments.dev]
aws = { region = "us-east-1" }
cluster = { eks = "api-dev" }
namespace = "api"
values = "values-dev.yaml"

[tool.deployctl.environments.prod]
aws = { region = "us-east-1", account_id = "210987654321" }
cluster = { kubeconfig = "kube/prod.yaml", context = "prod" }
namespace = "api"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
protected = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigProblemsError) as caught:
        load(write(tmp_path, text))
    return caught.value.problems


def test_valid_config_loads_into_frozen_models(tmp_path: Path) -> None:
    config = load(write(tmp_path, VALID))
    settings = config.settings
    assert list(settings.environments) == ["shared", "dev", "prod"]
    assert settings.environments["prod"].promote_from == "dev"
    assert settings.environments["shared"].deployable is False
    assert settings.environments["dev"].deployable is True
    assert settings.apps["api"].image.ref == "123456789012.dkr.ecr.us-east-1.amazonaws.com/api"
    assert config.resolve(Path("values-dev.yaml")) == tmp_path / "values-dev.yaml"
    with pytest.raises(ValueError, match="frozen"):
        settings.environments["dev"].namespace = "other"  # type: ignore[misc]


def test_a_promotion_target_soaks_ten_minutes_unless_told_otherwise(tmp_path: Path) -> None:
    """Issue 25: prod's soak defaulted to 0, so the gate passed on a single verdict taken seconds after a rollout."""
    settings = load(write(tmp_path, VALID.replace("promote_soak_minutes = 0", ""))).settings
    assert settings.environments["prod"].promote_soak_minutes == 10
    assert load(write(tmp_path, VALID)).settings.environments["prod"].promote_soak_minutes == 0  # on purpose


def test_misspelled_key_names_file_path_and_suggestion(tmp_path: Path) -> None:
    text = VALID.replace(
        'namespace = "api"\nvalues = "values-prod.yaml"', 'namspace = "api"\nvalues = "values-prod.yaml"'
    )
    problems = problems_of(tmp_path, text)
    assert (
        "pyproject.toml: tool.deployctl.environments.prod.namspace: unknown key (did you mean 'namespace'?)" in problems
    )


def test_unknown_key_without_close_match_lists_known_keys(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        VALID.replace('region = "us-east-1" }\ncluster = { eks', 'zzz = 1, region = "us-east-1" }\ncluster = { eks', 1),
    )
    assert any(
        "tool.deployctl.environments.dev.aws.zzz: unknown key (known keys:" in p and "region" in p for p in problems
    )


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = (
        VALID.replace('bucket = "acme-tfstate"', 'bucket = "Bad_Bucket"')
        .replace('account_id = "210987654321"', 'account_id = "12"')
        .replace('release = "api"', 'relase = "api"')
    )
    problems = problems_of(tmp_path, text)
    joined = "\n".join(problems)
    assert "environments.shared.terraform.backend.bucket" in joined
    assert "environments.prod.aws.account_id" in joined
    assert "apps.api.relase: unknown key (did you mean 'release'?)" in joined
    assert "apps.api.release: required key is missing" in joined
    assert len(problems) == 4


def test_cluster_needs_exactly_one_source(tmp_path: Path) -> None:
    text = VALID.replace('cluster = { eks = "api-dev" }', 'cluster = { eks = "api-dev", kubeconfig = "k" }')
    problems = problems_of(tmp_path, text)
    assert any("environments.dev.cluster: set exactly one of 'eks'" in p for p in problems)


def test_promote_from_must_name_an_environment(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, VALID.replace('promote_from = "dev"', 'promote_from = "staging"'))
    assert any("promote_from: unknown environment 'staging' (known: dev, prod, shared)" in p for p in problems)


def test_deployable_environment_needs_namespace_and_values(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, VALID.replace('namespace = "api"\nvalues = "values-dev.yaml"\n', ""))
    assert any(
        "environments.dev: an environment with a 'cluster' also needs 'namespace' and 'values'" in p for p in problems
    )


def test_overrides_are_merged_before_validation(tmp_path: Path) -> None:
    config = load(
        write(tmp_path, VALID),
        {
            "environments": {
                "dev": {"aws": {"endpoint_url": "http://127.0.0.1:5000"}, "cluster": {"eks": None, "kubeconfig": "/k"}}
            }
        },
    )
    dev = config.settings.environments["dev"]
    assert dev.aws.endpoint_url == "http://127.0.0.1:5000"
    assert dev.aws.region == "us-east-1"
    assert dev.cluster is not None and dev.cluster.kubeconfig == Path("/k") and dev.cluster.eks is None


def test_find_config_walks_upward_to_the_table(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text("[project]\nname = 'other'\n", encoding="utf-8")
    assert find_config(nested) == tmp_path / "pyproject.toml"


def test_find_config_prefers_explicit_then_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.toml"
    other.write_text(textwrap.dedent(VALID), encoding="utf-8")
    monkeypatch.setenv("DEPLOYCTL_CONFIG", str(other))
    assert find_config(tmp_path / "nowhere") == other.resolve()
    with pytest.raises(ConfigProblemsError, match="configuration file not found"):
        find_config(tmp_path, str(tmp_path / "missing.toml"))


def test_invalid_toml_is_one_problem_at_its_line_and_column(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "[tool.deployctl\n")
    assert len(problems) == 1
    assert (
        problems[0]
        == f"{tmp_path / 'pyproject.toml'}:1:16: invalid TOML: Expected ']' at the end of a table declaration"
    )


def test_a_syntax_error_in_our_table_is_reported_not_skipped(tmp_path: Path) -> None:
    """find_config used to skip an unparsable pyproject.toml and report that none was found."""
    broken = VALID.replace('release = "api"', 'release = "api', 1)
    path = write(tmp_path, broken)
    nested = tmp_path / "src"
    nested.mkdir()
    assert find_config(nested) == path, "our file, even broken: load() says where"
    with pytest.raises(ConfigProblemsError) as caught:
        load(path)
    line = textwrap.dedent(broken).splitlines().index('release = "api') + 1
    assert caught.value.problems == [f"{path}:{line}:15: invalid TOML: Illegal character '\\n'"]
    assert caught.value.hint == "fix the syntax there (pyproject.toml)"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pyproject.toml").write_text("[project\n", encoding="utf-8")
    assert find_config(tmp_path / "other") == path, "an unrelated broken pyproject.toml is passed over"


def test_missing_config_files_are_named_with_where_they_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigProblemsError) as caught:
        find_config(tmp_path, "missing.toml")
    assert caught.value.problems == [f"{Path('missing.toml').absolute()}: configuration file not found (from --config)"]
    assert caught.value.hint is not None and "--config" in caught.value.hint
    monkeypatch.setenv("DEPLOYCTL_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(
        ConfigProblemsError, match=r"gone.toml: configuration file not found \(from \$DEPLOYCTL_CONFIG\)"
    ):
        find_config(tmp_path)
    monkeypatch.delenv("DEPLOYCTL_CONFIG")
    with pytest.raises(ConfigProblemsError) as nothing:
        find_config(tmp_path)
    assert nothing.value.hint is not None and "--config PATH" in nothing.value.hint


def test_rollout_timeout_seconds_defaults_and_bounds(tmp_path: Path) -> None:
    config = load(write(tmp_path, VALID))
    assert config.settings.environments["dev"].rollout_timeout_seconds == 600
    problems = problems_of(
        tmp_path, VALID.replace('values = "values-dev.yaml"', 'values = "values-dev.yaml"\nrollout_timeout_seconds = 0')
    )
    assert problems == [
        "pyproject.toml: tool.deployctl.environments.dev.rollout_timeout_seconds: Input should be greater than or equal to 1"
    ]


def test_repository_reference_config_is_valid() -> None:
    config = load(Path(__file__).resolve().parents[2] / "pyproject.toml")
    assert {"shared", "dev", "prod"} <= set(config.settings.environments)
    prod = config.settings.environments["prod"]
    assert prod.protected and prod.promote_from == "dev"
    assert config.settings.environments["shared"].cluster is None


def test_environment_image_registry_overrides_where_it_pulls(tmp_path: Path) -> None:
    from deployctl.app.context import EnvContext
    from deployctl.console import Console
    from deployctl.runner import ProcessRunner

    text = VALID.replace(
        'promote_from = "dev"', 'promote_from = "dev"\nimage_registry = "210987654321.dkr.ecr.us-east-1.amazonaws.com"'
    )
    config = load(write(tmp_path, text))
    app = config.settings.apps["api"]
    reporter = Console()
    prod = EnvContext(config, "prod", ProcessRunner(), reporter).image(app, tag="release-1.0.0")
    dev = EnvContext(config, "dev", ProcessRunner(), reporter).image(app, tag="abc")
    assert prod.name == "210987654321.dkr.ecr.us-east-1.amazonaws.com/api"
    assert dev.name == "123456789012.dkr.ecr.us-east-1.amazonaws.com/api"
