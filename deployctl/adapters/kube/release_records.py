"""helm's release records (its Secrets) and hook objects: the pending records an interrupted run left, and their
removal."""

from __future__ import annotations

from dataclasses import dataclass

from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.client import api_client, errors, translate


@dataclass(frozen=True)
class ReleaseRecord:
    """One helm release revision as stored by helm's default (secret) driver."""

    secret: str
    revision: int
    status: str


def pending_release_records(kube: Kube, namespace: str, release: str) -> list[ReleaseRecord]:
    """Helm release secrets of ``release`` labelled with a pending status."""
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = api_client(kube)
    try:
        listed = kclient.CoreV1Api(api).list_namespaced_secret(namespace, label_selector=f"owner=helm,name={release}")
    except (ApiException, HTTPError) as exc:
        raise translate(exc, kube) from None
    records = []
    for item in listed.items:
        labels = item.metadata.labels or {}
        status = labels.get("status", "")
        if status.startswith("pending-"):
            records.append(ReleaseRecord(item.metadata.name, int(labels.get("version", "0")), status))
    return sorted(records, key=lambda r: r.revision)


def delete_release_record(kube: Kube, namespace: str, record: ReleaseRecord) -> None:
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = api_client(kube)
    try:
        kclient.CoreV1Api(api).delete_namespaced_secret(record.secret, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise translate(exc, kube) from None
    except HTTPError as exc:
        raise translate(exc, kube) from None


def delete_hook(kube: Kube, namespace: str, kind: str, name: str) -> None:
    """Delete a hook Job (its pods with it) or Pod; one already gone is fine, a failure is only logged (clean-up
    never fails what it cleans up after)."""
    import logging

    from kubernetes import client as kclient

    api = api_client(kube)
    try:
        if kind == "Job":
            kclient.BatchV1Api(api).delete_namespaced_job(name, namespace, propagation_policy="Background")
        elif kind == "Pod":
            kclient.CoreV1Api(api).delete_namespaced_pod(name, namespace)
    except errors() as exc:
        if getattr(exc, "status", None) != 404:
            logging.getLogger(__name__).warning("could not delete %s/%s: %s", kind, name, translate(exc, kube).message)
