"""Reading a long ledger (issue 29): every command read its environment's whole history, one S3 GET per entry.

``ENTRIES`` entries written to the lab's moto (a process of its own), then read by a fresh ``Ledger`` (as each new
deployctl process reads it) one GET after the other (``READERS = 1``, as before issue 29) and ``store.READERS`` at a
time, interleaved round by round; once directly and once through a proxy that holds every request for ``DELAY``
seconds (a runner's round trip to S3 in its region is of that order; moto on loopback answers in a few ms, which
hides what a serial read costs on AWS). Both reads must find the same entries in the same order. CPU: this
process's during the read (the client's, and the relay's, which runs in it).

Then the questions a promotion and a rollout ask (``ledger.labels``), in the same rounds: the evidence of the newest
digest of one app (its entries from that digest's first on) and an app's open intents (none open: nothing to
fetch). Each must find what the whole read finds for it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bench import labs
from bench.measure import Sample, loadavg, say
from bench.proxy import CountingProxy
from deployctl.ledger import labels, store
from deployctl.ledger.entry import Entry, open_intents
from deployctl.promotion.evidence import evidence_of

ENTRIES = 500
DELAY = 0.02
BUCKET = "bench-ledger-history"


def _client(endpoint: str) -> Any:  # a boto3 S3 client
    import boto3

    from deployctl.adapters.aws import client_config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto's, not a secret
        config=client_config(),
    )


@contextmanager
def _serial() -> Iterator[None]:
    kept, store.READERS = store.READERS, 1
    try:
        yield
    finally:
        store.READERS = kept


APP = "app03"
AT = datetime(2030, 1, 1, tzinfo=UTC)
NEWEST = "sha256:" + f"{ENTRIES // 10 - 1:064x}"  # app03's newest digest (``_entry``)


def _entry(n: int, entries: int) -> Entry:
    """The n-th of ``entries`` rollouts: ten apps in turn, each a new digest per turn (a commit on main)."""
    digest = "sha256:" + f"{n // 10 + ENTRIES // 10 - entries // 10:064x}"
    return Entry("dev", f"app{n % 10:02d}", "deploy", "succeeded", verdict="healthy", digest=digest)


QUESTIONS: dict[str, labels.Question | None] = {
    "whole": None,
    "evidence": labels.since_digest(APP, NEWEST),
    "open intents": labels.open_intents(APP),
}


def _read(endpoint: str, serial: bool, question: str = "whole") -> tuple[float, float, Any]:
    """The read's wall time, this process's CPU during it (moto is a process of its own), and its answer."""
    ledger = store.Ledger("dev", BUCKET, _client(endpoint), warn=lambda _: None)
    started, cpu = time.perf_counter(), time.process_time()
    if serial:
        with _serial():
            read = ledger.read()
    else:
        read = ledger.read(question=QUESTIONS[question])
    return time.perf_counter() - started, time.process_time() - cpu, _answer(question, read)


def _answer(question: str, read: Any) -> Any:
    if question == "evidence":
        return evidence_of(read.entries, env="dev", app=APP, digest=NEWEST, now=AT)  # one time for every read
    if question == "open intents":
        return [e.id for e in open_intents(read.entries, APP)]
    return [e.id for e in read.entries]


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    entries = 40 if smoke else ENTRIES
    found: list[Sample] = []
    with labs.started(["moto"]) as lab:
        moto = lab.moto_url
        s3 = _client(moto)
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        writer = store.Ledger("dev", BUCKET, s3, warn=lambda _: None)
        say(f"ledger: writing {entries} entries")
        for n in range(entries):
            writer.append(_entry(n, entries))
        upstream = moto.removeprefix("http://").rstrip("/")
        expected = _read(moto, serial=True)[2]
        whole = store.Ledger("dev", BUCKET, s3, warn=lambda _: None).read()
        answers = {q: _answer(q, whole) for q in QUESTIONS if q != "whole"}
        for delay in (0.0, DELAY):
            with CountingProxy(upstream, delay=delay) as proxy:
                endpoint = f"http://{proxy.host}"
                times: dict[bool, list[float]] = {True: [], False: []}
                cpus: dict[bool, list[float]] = {True: [], False: []}
                asked: dict[str, list[float]] = {q: [] for q in answers}
                asked_cpu: dict[str, list[float]] = {q: [] for q in answers}
                load = loadavg()
                for n in range(repeat):
                    for serial in (n % 2 == 0, n % 2 != 0):  # which goes first alternates
                        seconds, cpu, ids = _read(endpoint, serial)
                        if ids != expected or len(ids) != entries:
                            raise RuntimeError(f"read {len(ids)} entries of {entries}, or not in S3's order")
                        times[serial].append(seconds)
                        cpus[serial].append(cpu)
                        how = "serial" if serial else "parallel"
                        say(f"ledger: {entries} entries, {delay * 1000:.0f} ms added, {how}: {seconds:.2f} s")
                    for question, answer in answers.items():
                        seconds, cpu, answered = _read(endpoint, False, question)
                        if answered != answer:
                            raise RuntimeError(f"the {question} question answered otherwise than the whole read")
                        asked[question].append(seconds)
                        asked_cpu[question].append(cpu)
            serial_s, parallel_s = statistics.median(times[True]), statistics.median(times[False])
            where = f"moto + {delay * 1000:.0f} ms per request" if delay else "moto on loopback"
            subject = f"read {entries} entries, one GET at a time ({where})"
            extra = {"load": load, "delay_s": delay, "cpu_s": statistics.median(cpus[True])}
            found.append(Sample("ledger", subject, tuple(times[True]), extra))
            found.append(
                Sample(
                    "ledger",
                    f"read {entries} entries, {store.READERS} at a time ({where})",
                    tuple(times[False]),
                    {**extra, "cpu_s": statistics.median(cpus[False]), "vs_serial": parallel_s / serial_s},
                )
            )
            for question, seconds_each in asked.items():
                ratio = statistics.median(seconds_each) / parallel_s
                subject = f"{question} of {APP} among {entries} entries, by the keys ({where})"
                cpu_s = statistics.median(asked_cpu[question])
                notes = {**extra, "cpu_s": cpu_s, "vs_whole_read": ratio}
                found.append(Sample("ledger", subject, tuple(seconds_each), notes))
    return found
