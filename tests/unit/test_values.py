"""The values file: one section per app (or the whole file for a lone app), edits that change only the edited
values, and the image a section pins read back through the app's ``image_values`` mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployctl.config import App
from deployctl.core.errors import UsageError
from deployctl.core.refs import ImageRef
from deployctl.release import chartvalues, values, yamledit

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def app(**changes: Any) -> App:
    return App.model_validate(
        {"chart": "charts/api", "release": "api", "image": {"registry": "r.example", "repository": "api"}, **changes}
    )


def test_a_lone_app_may_own_the_whole_file_and_apps_own_their_sections(tmp_path: Path) -> None:
    whole = values.ValuesFile(tmp_path / "one.yaml")
    whole.path.write_text("replicaCount: 2\nimage:\n  digest: ''\n")
    assert whole.section_path("api", ["api"]) == ()
    assert whole.section("api", ["api"]) == {"replicaCount": 2, "image": {"digest": ""}}
    many = values.ValuesFile(tmp_path / "many.yaml")
    many.path.write_text("api:\n  replicaCount: 2\nworker:\n  image: r/worker:1\n")
    assert many.section_path("worker", ["api", "worker"]) == ("worker",)
    assert many.section("api", ["api", "worker"]) == {"replicaCount": 2}
    assert many.section("fetcher", ["api", "worker", "fetcher"]) == {}, "an app without a section: chart defaults"


def test_prod_values_edit_changes_only_the_two_lines(tmp_path: Path) -> None:
    path = tmp_path / "values-prod.yaml"
    path.write_bytes((ROOT / "values-prod.yaml").read_bytes())
    file = values.ValuesFile(path)
    prefix = file.section_path("api", ["api"])
    edit = file.edit({(*prefix, "image", "tag"): "release-1.4.0", (*prefix, "image", "digest"): DIGEST})
    changed = [(a, b) for a, b in zip(edit.before.splitlines(), edit.after.splitlines(), strict=True) if a != b]
    assert len(changed) == 2
    assert all(a.endswith('""') for a, _ in changed)
    assert changed[0][1].endswith('tag: "release-1.4.0"') and changed[1][1].endswith(f'digest: "{DIGEST}"')
    path.write_text(edit.after)
    assert chartvalues.pinned(app(), file.section("api", ["api", "worker"])) == {
        "tag": "release-1.4.0",
        "digest": DIGEST,
    }


def test_edit_diff_then_write_keeps_crlf(tmp_path: Path) -> None:
    path = tmp_path / "values-prod.yaml"
    path.write_bytes(b'# c\r\nimage:\r\n  tag: ""\r\n  digest: ""\r\n')
    edit = values.ValuesFile(path).edit({("image", "tag"): "release-2.0.0", ("image", "digest"): DIGEST})
    assert edit.changed
    assert '+  tag: "release-2.0.0"' in edit.diff
    assert path.read_bytes().decode() == edit.before  # nothing written yet
    edit.write()
    assert path.read_bytes() == f'# c\r\nimage:\r\n  tag: "release-2.0.0"\r\n  digest: "{DIGEST}"\r\n'.encode()
    assert not list(tmp_path.glob(".*tmp"))
    again = values.ValuesFile(path).edit({("image", "digest"): DIGEST})
    assert not again.changed and again.diff == ""


@pytest.mark.parametrize(
    ("text", "match"),
    [("image: [1, 2]\n", "image must be a single value"), ("- a\n", "top level must be a mapping"), ("a: [\n", "YAML")],
)
def test_bad_files_are_usage_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=match):
        values.ValuesFile(path).edit({("image",): DIGEST})


# (case, file, apps, the problems found: each a fragment of its message)
SECTIONS: list[tuple[str, str, list[str], list[str]]] = [
    ("every section is an app", "api: {}\nworker:\n  replicas: 1\n", ["api", "worker"], []),
    ("an app without a section", "api: {}\n", ["api", "worker"], []),
    ("a typo: did you mean", "api: {}\nfetchr: {}\n", ["fetcher", "api"], ["section 'fetchr' matches no app (did you mean 'fetcher'?)"]),
    ("no close app: the apps", "api: {}\nzzz: 1\n", ["fetcher", "api"], ["section 'zzz' matches no app (apps: fetcher, api)"]),
    ("several apps: every key is a section", "fetchr: {}\napl: {}\n", ["fetcher", "api"], ["'fetchr'", "'apl'"]),
    ("several apps: a scalar at the top is no app's either", "api: {}\nreplicaCount: 1\n", ["api", "worker"], ["'replicaCount'"]),
    ("a lone app owns the whole file: chart keys", "replicaCount: 2\nimage:\n  tag: x\n", ["api"], []),
    ("a lone app with its own section: sections", "api: {}\nworkr: {}\n", ["api"], ["'workr' matches no app"]),
    ("an empty file", "", ["api", "worker"], []),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "apps", "found"), SECTIONS, ids=[c[0] for c in SECTIONS])
def test_a_section_that_matches_no_app_is_an_error(
    tmp_path: Path, case: str, text: str, apps: list[str], found: list[str]
) -> None:
    file = values.ValuesFile(tmp_path / "values-dev.yaml", "environments.dev.values")
    file.path.write_text(text)
    problems = file.problems(apps)
    assert len(problems) == len(found), (case, problems)
    for problem, fragment in zip(problems, found, strict=True):
        assert problem.startswith(f"{file.path}: section ") and fragment in problem, case
    if found:  # every reader of a section refuses the file (exit 2), naming every problem at once
        with pytest.raises(UsageError) as refused:
            file.section(apps[0], apps)
        assert refused.value.exit_code == 2 and all(f in refused.value.message for f in found)
        assert "environments.dev.values" in str(refused.value.hint)
    else:
        file.section(apps[0], apps)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (
            "api:\n  replicaCount: 1\n image: x\n",
            ":3:2: invalid YAML: ",
            "while parsing a block mapping that starts at line 1",
        ),
        ("api:\n  config: [a, b\n", ":3:1: invalid YAML: ", "while parsing a flow sequence that starts at line 2"),
        ("api: {}\napi: {}\n", ":2:1: invalid YAML: found duplicate key", "while constructing a mapping"),
        ("api:\n\treplicaCount: 1\n", ":2:1: invalid YAML: found character '\\t'", ""),
    ],
)
def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path: Path, text: str, where: str, what: str) -> None:
    file = values.ValuesFile(tmp_path / "values-dev.yaml")
    file.path.write_text(text)
    with pytest.raises(UsageError) as refused:
        file.section("api", ["api"])
    message = refused.value.message
    assert message.startswith(f"{file.path}{where}") and what in message, message
    assert "\n" not in message and refused.value.hint == "fix the syntax there (values-dev.yaml)"


# (mapping, section, the parts read back)
MAPPINGS: list[tuple[dict[str, str], dict[str, Any], dict[str, str]]] = [
    ({}, {"image": {"digest": DIGEST, "tag": "release-1.0.0"}}, {"digest": DIGEST, "tag": "release-1.0.0"}),
    (
        {"image": "{registry}/{repository}@{digest}"},
        {"image": f"r.example/worker@{DIGEST}"},
        {"registry": "r.example", "repository": "worker", "digest": DIGEST},
    ),
    (
        {"image.registry": "{registry}", "image.name": "{repository}", "image.version": "{tag}@{digest}"},
        {"image": {"registry": "r.example", "name": "fetcher", "version": f"release-2.0.0@{DIGEST}"}},
        {"registry": "r.example", "repository": "fetcher", "tag": "release-2.0.0", "digest": DIGEST},
    ),
    ({"image": "{registry}/{repository}@{digest}"}, {"image": "r.example/worker:latest"}, {}),  # not pinned
    ({}, {"image": {"digest": "latest"}}, {}),  # not a digest
]


@pytest.mark.parametrize(("mapping", "section", "parts"), MAPPINGS)
def test_image_values_round_trip(mapping: dict[str, str], section: dict[str, Any], parts: dict[str, str]) -> None:
    configured = app(image_values=mapping) if mapping else app()
    assert chartvalues.pinned(configured, section) == parts


def test_image_values_leave_out_keys_whose_parts_are_unknown() -> None:
    image = ImageRef("r.example", "api", digest=DIGEST)
    assert chartvalues.image_values(app(), image, None) == {"image.repository": "r.example/api", "image.digest": DIGEST}
    assert chartvalues.nested({"image.digest": DIGEST, "build.gitSha": "abc"}) == {
        "image": {"digest": DIGEST},
        "build": {"gitSha": "abc"},
    }


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"image_values": {"image": "{registry}/{repo}@{digest}"}}, r"unknown placeholder \{repo\}"),
        ({"image_values": {"image": "{registry}/{repository}:{tag}"}}, r"no key takes \{digest\}"),
        ({"image_values": {"image..x": "{digest}"}}, "not a dotted values key"),
        ({"chart": "oci://r.example/charts/api"}, "needs chart_version"),
    ],
)
def test_bad_app_settings_are_rejected_at_load(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        app(**changes)


def test_the_file_is_parsed_once_while_its_text_stays_and_again_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each app's section asks for the mapping several times (issue 29: ruamel's parse was a fifth of a 10-app
    promotion's CPU); an edit is read at once, and what a caller does to what it got changes nothing."""
    path = tmp_path / "values-prod.yaml"
    path.write_text("api:\n  replicaCount: 2\nworker:\n  replicaCount: 1\n")
    parses: list[str] = []
    load = yamledit.load

    def counted(text: str, name: str) -> Any:
        parses.append(name)
        return load(text, name)

    monkeypatch.setattr(yamledit, "load", counted)
    prod = values.ValuesFile(path)
    apps = ("api", "worker")
    assert [prod.section(a, apps) for a in apps] == [{"replicaCount": 2}, {"replicaCount": 1}]
    assert len(parses) == 1
    prod.mapping()["api"]["replicaCount"] = 99
    assert prod.section("api", apps) == {"replicaCount": 2}
    values.ValuesEdit(path, path.read_text(), path.read_text().replace("2", "3")).write()
    assert prod.section("api", apps) == {"replicaCount": 3} and len(parses) == 2
