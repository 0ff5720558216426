"""The diagnosis of a failed rollout against recorded API responses.

The lab's kwok pods have no kubelet, so no logs: this fake ``CoreV1Api`` injects what only a real cluster
answers (log text, the kubelet's 400 for a previous container it no longer keeps); the lab's own answer
(404) and the events are the recorded ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ReadTimeoutError

from deployctl.rollout.diagnosis import LOG_LINES, diagnose
from deployctl.rollout.pods import timestamp
from deployctl.rollout.states import Verdict
from tests.unit.test_rollout import RECORDED, recorded


def api_error(status: int, message: str) -> ApiException:
    """An ApiException as the client raises it for a Status response."""
    error = ApiException(status=status, reason={400: "Bad Request", 404: "Not Found"}[status])
    error.body = json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": status}
    )
    return error


# The kubelet's answers (through the API server), as a real cluster gives them.
PREVIOUS_GONE = api_error(400, 'previous terminated container "app" in pod "crash" not found')
KWOK_NO_KUBELET = api_error(404, "the server could not find the requested resource ( pods/log crash)")  # the lab's
READ_TIMEOUT = ReadTimeoutError(None, "/api/v1/namespaces/ns/pods/crash/log", "read timed out")  # type: ignore[arg-type] # no pool
CRASH_LOG = "".join(f"2026-11-29T22:35:{i:02d}Z connecting to db.internal:5432 (attempt {i})\n" for i in range(15))
PANIC_LOG = "starting api v2\npanic: runtime error: invalid memory address or nil pointer dereference\n"


@dataclass
class RecordedCore:
    """The calls ``diagnose`` makes on a CoreV1Api, answered from recordings."""

    logs: dict[bool, str | BaseException]  # previous? -> text or the error the API server returns
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    @property
    def api_client(self) -> RecordedCore:
        return self

    @staticmethod
    def sanitize_for_serialization(obj: Any) -> Any:
        return obj

    def read_namespaced_pod(self, name: str, _namespace: str, **_: Any) -> dict[str, Any]:
        self.calls.append(f"pod {name}")
        if name not in self.pods:
            raise api_error(404, f'pods "{name}" not found')
        return self.pods[name]

    def list_namespaced_event(self, _namespace: str, *, field_selector: str, **_: Any) -> dict[str, Any]:
        self.calls.append(f"events {field_selector}")
        wanted = dict(part.split("=", 1) for part in field_selector.split(","))
        items = [
            e
            for key, e in RECORDED.items()
            if key.startswith("Event/")
            and e["involvedObject"]["name"] == wanted["involvedObject.name"]
            and e["involvedObject"].get("uid") == wanted.get("involvedObject.uid", e["involvedObject"].get("uid"))
        ]
        return {"items": items}

    def read_namespaced_pod_log(self, name: str, _namespace: str, *, previous: bool, tail_lines: int, **_: Any) -> str:
        self.calls.append(f"logs {name} previous={previous} tail={tail_lines}")
        answer = self.logs[previous]
        if isinstance(answer, BaseException):
            raise answer
        return answer


NOW = (timestamp(RECORDED["Pod/crash"]["metadata"]["creationTimestamp"]) or 0) + 60
CRASH = Verdict("failed", "pod crash container app: CrashLoopBackOff", "crash", "app", "CrashLoopBackOff", "Pod/crash")


def test_current_and_previous_logs_where_the_cluster_has_them() -> None:
    core = RecordedCore({False: PANIC_LOG, True: CRASH_LOG}, pods={"crash": recorded("Pod/crash")})
    lines = diagnose(core, "ns", CRASH, now=NOW)
    assert "logs of pod/crash container app (current), last 2 line(s):" in lines
    assert "| panic: runtime error: invalid memory address or nil pointer dereference" in lines
    previous = lines.index(f"logs of pod/crash container app (previous), last {LOG_LINES} line(s):")
    assert lines[previous + 1 :] == [f"| {line}" for line in CRASH_LOG.splitlines()[-LOG_LINES:]]
    assert f"logs crash previous=True tail={LOG_LINES}" in core.calls  # never the whole log


@pytest.mark.parametrize(
    ("case", "logs", "expected"),
    [
        (
            "the kubelet no longer keeps the previous container",
            {False: PANIC_LOG, True: PREVIOUS_GONE},
            'logs of pod/crash container app (previous): no logs available (HTTP 400: previous terminated container "app" in pod "crash" not found)',
        ),
        (
            "kwok: no kubelet behind the node",
            {False: KWOK_NO_KUBELET, True: KWOK_NO_KUBELET},
            "logs of pod/crash container app (previous): no logs available (HTTP 404: the server could not find the requested resource ( pods/log crash))",
        ),
        (
            "the read times out",
            {False: PANIC_LOG, True: READ_TIMEOUT},
            "logs of pod/crash container app (previous): no logs available (ReadTimeoutError: None: read timed out)",
        ),
    ],
)
def test_missing_logs_say_why(case: str, logs: dict[bool, str | BaseException], expected: str) -> None:
    lines = diagnose(RecordedCore(logs, pods={"crash": recorded("Pod/crash")}), "ns", CRASH, now=NOW)
    assert expected in lines, (case, lines)


def test_a_container_that_never_started_has_no_logs_to_ask_for() -> None:
    core = RecordedCore({False: PANIC_LOG, True: CRASH_LOG}, pods={"pull": recorded("Pod/pull")})
    verdict = Verdict(
        "failed", "pod pull container app: ImagePullBackOff", "pull", "app", "ImagePullBackOff", "Pod/pull"
    )
    lines = diagnose(core, "ns", verdict, now=NOW)
    assert "logs of pod/pull container app (current): no logs available (it never started: ImagePullBackOff)" in lines
    assert "logs of pod/pull container app (previous): no logs available (it has not restarted)" in lines
    assert not [c for c in core.calls if c.startswith("logs")]


def test_events_of_the_resource_and_of_this_pod_only() -> None:
    core = RecordedCore({False: "", True: ""}, pods={"crash": recorded("Pod/crash")})
    lines = diagnose(core, "ns", CRASH, now=NOW)
    assert any(
        line.startswith("event Warning BackOff pod/crash") and "Back-off restarting failed container" in line
        for line in lines
    )
    uid = RECORDED["Pod/crash"]["metadata"]["uid"]
    assert f"events involvedObject.kind=Pod,involvedObject.name=crash,involvedObject.uid={uid}" in core.calls
    assert "logs of pod/crash container app (current): empty" in lines
    # the resource's events from before this rollout began are an earlier rollout's
    job = Verdict(
        "failed", "job job-failed: BackoffLimitExceeded", reason="BackoffLimitExceeded", resource="Job/job-failed"
    )
    recent = diagnose(RecordedCore({}), "ns", job, now=NOW, since=NOW - 60)
    assert any("BackoffLimitExceeded job/job-failed" in line for line in recent)
    assert diagnose(RecordedCore({}), "ns", job, now=NOW, since=NOW + 600) == ["events: none recorded"]


def test_the_pod_gone_still_gives_its_events_and_asks_for_logs() -> None:
    lines = diagnose(RecordedCore({False: KWOK_NO_KUBELET, True: KWOK_NO_KUBELET}), "ns", CRASH, now=NOW)
    assert any("BackOff pod/crash" in line for line in lines)
    assert any(
        line.startswith("logs of pod/crash container app (current): no logs available (HTTP 404") for line in lines
    )
