"""What helm says a release is, read from that release's own history (issue 29: ``helm list --filter`` decoded every
revision of every release in the namespace before it filtered), against the lab's API server with helm 3 and helm 4:
the same answer as ``helm list`` for an installed, a failed and a missing release, with other releases beside it;
the history an uninstall kept is not installed; an unreachable cluster is an error, never "not installed"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployctl.adapters.helm import Helm
from deployctl.adapters.helm_argv import Kube
from deployctl.core.errors import CommandFailedError
from deployctl.runner import ProcessRunner
from tests.lab.conftest import RunInLab

pytestmark = pytest.mark.lab

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-{{ .Values.suffix }}\n"


def _chart(root: Path) -> Path:
    chart = root / "cm"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: cm\nversion: 0.1.0\nappVersion: '1.2'\n")
    (chart / "values.yaml").write_text("suffix: config\n")
    (chart / "templates" / "cm.yaml").write_text(CONFIGMAP)
    return chart


@pytest.mark.parametrize("binary", ["helm", "helm3"])
def test_a_release_is_read_from_its_own_history_as_helm_list_shows_it(
    binary: str, kube_run: RunInLab, kubeconfig: Path, lab_env: dict[str, str], tmp_path: Path
) -> None:
    namespace = f"release-of-{binary}"
    chart = _chart(tmp_path)
    helm = Helm.detect(ProcessRunner(base_env=lab_env), Kube(kubeconfig), binary=binary)
    assert helm.release("a", namespace) is None, "never installed (its namespace does not exist yet)"

    def install(release: str, *args: str, ok_codes: tuple[int, ...] = (0,)) -> None:
        argv = [binary, "upgrade", "--install", release, str(chart), "-n", namespace, "--create-namespace", *args]
        kube_run(argv, ok_codes=ok_codes)

    install("a")
    install("a", "--set", "suffix=second")
    for other in ("b", "c"):
        install(other)
    install("b", "--set", "suffix=NOT_A_VALID_NAME", ok_codes=(1,))  # the API server refuses it: revision 2 failed
    every = ["--all"] if helm.major == 3 else []
    listed = {
        r["name"]: r for r in json.loads(kube_run([binary, "list", *every, "-n", namespace, "-o", "json"]).stdout)
    }
    for name, revision, status in (("a", 2, "deployed"), ("b", 2, "failed"), ("c", 1, "deployed")):
        found = helm.release(name, namespace)
        assert found is not None
        assert (found.name, found.namespace, found.revision, found.status) == (name, namespace, revision, status)
        assert (found.chart, found.app_version) == ("cm-0.1.0", "1.2")
        row = listed[name]
        assert (int(row["revision"]), row["status"], row["chart"]) == (found.revision, found.status, found.chart)
    assert helm.release("d", namespace) is None, "another name in a namespace with releases"

    kube_run([binary, "uninstall", "c", "-n", namespace, "--keep-history"])
    assert helm.release("c", namespace) is None, "the history an uninstall kept is not an installed release"


def test_an_unreachable_cluster_is_an_error_not_a_missing_release(lab_env: dict[str, str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: nobody}}]\nusers: [{name: nobody, user: {}}]\n"
    )
    helm = Helm(runner=ProcessRunner(base_env=lab_env), kube=Kube(kubeconfig), major=4)
    with pytest.raises(CommandFailedError, match="unreachable") as caught:
        helm.release("a", "default")
    assert caught.value.hint is not None and "deployctl doctor" in caught.value.hint
