"""The environment lock under real races (issue 13): real processes against a real moto server.

A "zygote" process imports boto3 and deployctl.ledger.lock once, then per trial forks N children: each is a real
process with its own S3 client that waits for a common start instant, takes the lock with
``EnvironmentLock.hold``, and writes what it saw in its own record file (when it held the lock, by the
system-wide monotonic clock and the wall clock, its lock id, the id stored in S3 at the start and the end of
its hold, the stale lock it took over). It exits 0, or with the exit code of the DeployctlError it got
(5 = locked), or 1 on anything else. The invariants are checked from those records and the exit codes.

The queue of waiters lets only its first live waiter try the lock, which hides most races from the
compare-and-swap; but when tickets land at once, several waiters can each see themselves first. Half the
trials therefore make every child believe it is first (``_ahead_of`` answers 0 in the child): the worst
case the queue can produce, where the compare-and-swap alone must keep one holder.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from deployctl.ledger.lock_record import fence_key, host_identity, lock_key, queue_prefix

pytestmark = pytest.mark.lab

BUCKET = "lock-race-state"
TRIALS = 20
PROCESSES = 6
POLL = 0.05  # the children poll this often (deployctl's default is 2 s)

ZYGOTE = r"""
import json, os, sys, time, traceback
import boto3
from deployctl.ledger import lock
from deployctl.core.errors import DeployctlError

url, bucket = sys.argv[1], sys.argv[2]
lock.POLL_SECONDS = float(sys.argv[3])
session = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
)
session.client("s3", endpoint_url=url).list_buckets()  # loads the model and the endpoint rules before forking


def child(out, start_at, hold, timeout, first):
    s3 = session.client("s3", endpoint_url=url)  # its own connections
    s3.head_bucket(Bucket=bucket)
    env_lock = lock.EnvironmentLock("dev", bucket, s3)
    if first:  # every child believes it is first in the queue: they all try the lock
        env_lock._ahead_of = lambda ticket, waiter: 0

    def stored():
        return json.loads(s3.get_object(Bucket=bucket, Key=env_lock.key)["Body"].read())["id"]

    with open(out, "a") as f:
        def note(**fields):
            now = {"pid": os.getpid(), "mono": time.monotonic(), "wall": time.time()}
            f.write(json.dumps({**now, **fields}) + "\n")
            f.flush()

        while time.time() < start_at:
            time.sleep(0.0005)
        note(event="arrived", late=time.time() - start_at)
        taken = []
        try:
            with env_lock.hold("race", timeout=timeout, on_takeover=taken.append) as info:
                note(event="held", id=info.id, fence=info.fence, stored=stored(), took_over=[t.id for t in taken])
                time.sleep(hold)
                note(event="releasing", id=info.id, stored=stored())
        except DeployctlError as exc:
            note(event="refused", exit_code=int(exc.exit_code), message=exc.message)
            return int(exc.exit_code)
        except BaseException:
            note(event="crashed", traceback=traceback.format_exc())
            return 1
        return 0


for line in sys.stdin:
    trial = json.loads(line)
    pids = []
    for i, timeout in enumerate(trial["timeouts"]):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                start_at = trial["start_at"] + i * trial["stagger"]
                out = os.path.join(trial["dir"], f"{i}.jsonl")
                code = child(out, start_at, trial["hold"], timeout, trial["all_first"])
            finally:
                os._exit(code)
        pids.append(pid)
    exits = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    print(json.dumps(exits), flush=True)
"""


def measure(line: str) -> None:
    os.write(2, f"[measure] {line}\n".encode())


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server of our own on a free port (the lab's full sandbox is not needed here)."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], stdout=sink, stderr=sink
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(rb"Running on (http://127\.0\.0\.1:\d+)", log.read_bytes())):
            assert proc.poll() is None and time.monotonic() < deadline, f"moto did not start: {log.read_text()}"
            time.sleep(0.05)
        yield found.group(1).decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3(moto: str) -> Any:
    client = boto3.client(
        "s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@dataclass
class Zygote:
    proc: subprocess.Popen[str]
    stdin: IO[str]
    stdout: IO[str]

    def trial(
        self, out: Path, *, timeouts: list[float], hold: float, stagger: float = 0.0, all_first: bool = False
    ) -> list[int]:
        """Fork one child per timeout, all starting at one instant (or ``stagger`` apart); their exit codes."""
        out.mkdir()
        start_at = time.time() + 0.5  # every child has its client and connection by then
        order = {
            "dir": str(out),
            "start_at": start_at,
            "stagger": stagger,
            "hold": hold,
            "timeouts": timeouts,
            "all_first": all_first,
        }
        self.stdin.write(json.dumps(order) + "\n")
        self.stdin.flush()
        line = self.stdout.readline()
        assert line, f"the zygote died: exit {self.proc.wait()}"
        exits: list[int] = json.loads(line)
        return exits


@pytest.fixture
def zygote(moto: str, tmp_path: Path) -> Iterator[Zygote]:
    errors = (tmp_path / "zygote.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, moto, BUCKET, str(POLL)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield Zygote(proc, proc.stdin, proc.stdout)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        errors.close()


def records(trial_dir: Path) -> list[dict[str, dict[str, Any]]]:
    """Per child, its events by name."""
    found = []
    for path in sorted(trial_dir.glob("*.jsonl"), key=lambda p: int(p.stem)):
        found.append({e["event"]: e for e in map(json.loads, path.read_text().splitlines())})
    return found


def plant_stale(s3: Any, trial: int, *, orphaned: bool) -> str:
    """A stale lock: expired by S3's clock (held on another host, not renewed for more than its TTL), or
    orphaned (its pid is gone from this host and PID namespace)."""
    now = datetime.now(UTC)
    argv = [sys.executable, "-c", "import os; print(os.getpid())"]
    dead = subprocess.run(argv, capture_output=True, text=True, check=True)
    lock_id = f"stale{trial}"
    info = {
        "id": lock_id,
        "env": "dev",
        "owner": "ci",
        "host": os.uname().nodename if orphaned else "another-host",
        "pid": int(dead.stdout) if orphaned else 1,
        "command": "deploy dev",
        "ci_run_id": None,
        "started_at": (now - timedelta(hours=2)).isoformat(timespec="seconds"),
        "expires_at": (now + timedelta(hours=1)).isoformat(),  # the holder's clock: never judged
        "fence": trial * 10,
        "ttl_seconds": 3600 if orphaned else 0,
        "host_id": host_identity() if orphaned else "another-host/boot/pid:[1]",
    }
    s3.put_object(Bucket=BUCKET, Key=lock_key("dev"), Body=json.dumps(info).encode())
    if not orphaned:  # S3 stamps it now: it expires once S3's Date is past that by its TTL (0) + 1 s
        time.sleep(2.1)
    return lock_id


def leftovers(s3: Any) -> list[str]:
    """What is left under deployctl/locks/ but the last fencing number (kept on purpose)."""
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="deployctl/locks/").get("Contents", [])
    return [str(item["Key"]) for item in listed if item["Key"] != fence_key("dev")]


def test_racing_a_stale_lock_never_makes_two_holders(s3: Any, zygote: Zygote, tmp_path: Path) -> None:
    """20 trials: a planted stale lock (expired or orphaned), 6 processes starting at one instant (half wait
    up to 3 s, half try once), with the queue (half the trials) or all believing they are first. In each:
    exactly one take-over of the stale lock, the held intervals never overlap, the stored lock names its
    holder throughout, every process exits 0 or 5, and nothing is left behind."""
    started = time.monotonic()
    holders: list[int] = []
    locked = late = 0
    min_gap = float("inf")  # between one holder's release and the next one's hold; < 0 is an overlap
    timeouts = [3.0 if i % 2 == 0 else 0.0 for i in range(PROCESSES)]
    for trial in range(TRIALS):
        stale_id = plant_stale(s3, trial, orphaned=trial // 2 % 2 == 1)
        stale_fence = trial * 10
        exits = zygote.trial(tmp_path / f"trial-{trial}", timeouts=timeouts, hold=0.05, all_first=trial % 2 == 0)
        seen = records(tmp_path / f"trial-{trial}")
        where = f"trial {trial}: exits {exits}, records {seen}"
        assert set(exits) <= {0, 5}, where
        held = [r for r in seen if "held" in r]
        assert all(("releasing" in r) == (code == 0) for r, code in zip(seen, exits, strict=True)), where
        assert [r["held"]["took_over"] for r in held if r["held"]["took_over"]] == [[stale_id]], where
        for r in held:
            assert r["held"]["stored"] == r["held"]["id"] == r["releasing"]["stored"], where
        fences = [r["held"]["fence"] for r in sorted(held, key=lambda r: r["held"]["mono"])]
        assert fences == sorted(set(fences)) and fences[0] > stale_fence, f"numbers grow with each hold: {where}"
        spans = sorted((r["held"]["mono"], r["releasing"]["mono"]) for r in held)
        for (_, end), (start, _) in itertools.pairwise(spans):
            min_gap = min(min_gap, start - end)
        assert min_gap > 0, f"two holders at once: {where}"
        assert leftovers(s3) == [], where
        holders.append(len(held))
        locked += exits.count(5)
        late += sum(1 for r in seen if r["arrived"]["late"] > 0.05)
    elapsed = time.monotonic() - started
    measure(
        f"lock race: {TRIALS} trials x {PROCESSES} processes against a stale lock; holders per trial "
        f"min {min(holders)} mean {sum(holders) / TRIALS:.1f} max {max(holders)}; exit 5: {locked}; "
        f"take-overs per trial: 1; max overlap 0 (min gap between holders {min_gap * 1000:.1f} ms); "
        f"late starters {late}; {elapsed:.1f} s"
    )
    assert elapsed < 90  # half the trials wait 2 s for their planted lock to expire by S3's clock


def test_waiters_are_served_in_arrival_order(s3: Any, zygote: Zygote, tmp_path: Path) -> None:
    """One process takes the lock and holds it 0.3 s; four more arrive 0.1 s apart while it is held and
    each holds it 0.3 s in turn: they get it in the order they arrived (polling alone gives a random order)."""
    started = time.monotonic()
    trials = 3
    pairs = 0
    for trial in range(trials):
        exits = zygote.trial(tmp_path / f"fifo-{trial}", timeouts=[10.0] * 5, hold=0.3, stagger=0.1)
        seen = records(tmp_path / f"fifo-{trial}")
        assert exits == [0] * 5, f"trial {trial}: {exits} {seen}"
        arrived = {i: seen[i]["arrived"]["mono"] for i in range(5)}
        served = {i: seen[i]["held"]["mono"] for i in range(5)}
        for a, b in itertools.permutations(range(5), 2):
            if arrived[b] - arrived[a] > 0.03:  # clearly later (a closer pair may be preempted in between)
                assert served[a] < served[b], f"trial {trial}: {b} arrived after {a} but was served first: {seen}"
        pairs += sum(1 for a, b in itertools.permutations(range(5), 2) if arrived[b] - arrived[a] > 0.03)
        assert leftovers(s3) == []
    elapsed = time.monotonic() - started
    measure(
        f"lock fairness: {trials} trials x 5 staggered waiters, {pairs} ordered pairs all served in order, {elapsed:.1f} s"
    )


def test_the_lock_needs_no_queue_object_when_free(s3: Any) -> None:
    """Taking a free lock leaves nothing behind but the lock; releasing removes it (real S3 ETags)."""
    from deployctl.ledger.lock import EnvironmentLock

    lock = EnvironmentLock("dev", BUCKET, s3)
    with lock.hold("deploy dev", timeout=0) as lease:
        assert leftovers(s3) == [lock_key("dev")]
        assert lock.current() == lease.info
    assert leftovers(s3) == []
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix=queue_prefix("dev")).get("Contents")
