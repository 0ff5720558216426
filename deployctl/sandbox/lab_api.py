"""The lab's API server spoken to raw, as its admin (no kubernetes client import): the kubeconfig, a call, the fake
nodes kwok manages."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

from deployctl.sandbox import pki as pki_module
from deployctl.sandbox.ports import ssl_context

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def kubeconfig(context: str, api_port: int, pki: pki_module.Pki) -> dict[str, Any]:
    """A kubeconfig for the admin of the API server on ``api_port`` (its certificates in ``pki``)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {"server": f"https://127.0.0.1:{api_port}", "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "lab-admin",
                "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "lab-admin", "namespace": "default"}}],
        "current-context": context,
    }


def call(
    port: int,
    pki: pki_module.Pki,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """One call to the API server on ``port`` as the admin: its status and its JSON (text when not JSON)."""
    context = ssl_context(pki.ca_cert, (pki.admin_cert, pki.admin_key))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=15)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": content_type})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw.decode(errors="replace")


def fake_node(name: str, region: str, zone: str) -> dict[str, Any]:
    """A Node kwok manages (Ready once kwok sees it), in ``region`` and ``zone``."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "kwok",
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": zone,
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
        },
    }
