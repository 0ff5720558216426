"""Verification after a healthy rollout: "ready pods" is not "works".

Three kinds of check, each bounded in time and with a tolerance (``config.verify``):

* ``helm_test``: the chart's own ``helm.sh/hook: test`` hooks, run by ``helm test`` while their Jobs and Pods are
  watched with the rollout's verdicts (a test that crashes or cannot pull fails in seconds, with its events and
  logs);
* ``http``: requests through the API server's service proxy (``/api/v1/namespaces/NS/services/NAME:PORT/proxy/``,
  the kubeconfig's credentials: no port-forward, no network path into the cluster), or to a URL;
* ``metrics``: PromQL queries against a Prometheus-compatible API, evaluated over a window.

Modules: ``model`` (pure: what ran and what it saw, the outcome, the ledger's record), ``judge`` (pure: answers,
conditions, query results), ``http``, ``metrics`` and ``helm_test`` (each check's loop, its I/O through a small
callable so the loops are unit-tested), ``proxy`` (the service proxy and URL transports), ``run`` (every check of
an app in order, the first failure ending it).
"""

from __future__ import annotations
