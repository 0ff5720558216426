"""The cheap benchmarks at tiny sizes (``python -m bench --smoke``): they run, and what they measure
still shows the properties the full run is about (a retag moves no image bytes, a warm copy no blob)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.lab

KIB = 1024


def smoke(name: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    out = tmp_path / f"{name}.json"
    assert main(["--smoke", "--only", name, "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["schema"] == "deployctl/bench/v1"
    assert document["repeat"] == 1
    results = {r["subject"]: r for r in document["results"]}
    for result in results.values():
        assert result["benchmark"] == name
        assert len(result["times"]) == 1
        assert 0 < result["median"] < 60, result
    return results


def test_startup(tmp_path: Path) -> None:
    results = smoke("startup", tmp_path)
    assert {"python3 -c pass (floor)", "deployctl --help", "deployctl --version"} <= set(results)
    assert results["deployctl --help"]["extra"]["ratio_to_floor"] > 0


def test_promote_size_moves_manifests_not_images(tmp_path: Path) -> None:
    results = smoke("promote_size", tmp_path)
    assert set(results) == {
        "deployctl retag 64 KB",
        "crane pull+push 64 KB (naive)",
        "deployctl retag 1 MB",
        "crane pull+push 1 MB (naive)",
    }
    for size in ("64 KB", "1 MB"):
        ours = results[f"deployctl retag {size}"]["extra"]
        naive = results[f"crane pull+push {size} (naive)"]["extra"]
        # A retag is a manifest GET and PUT: a few KiB whatever the image size.
        assert 0 < ours["bytes_sent"] < 64 * KIB, ours
        assert 0 < ours["bytes_received"] < 64 * KIB, ours
        # The naive pull really downloads the whole image (the proxy counts real traffic).
        assert naive["bytes_received"] >= naive["image_bytes"], naive
    large = results["deployctl retag 1 MB"]["extra"]
    assert 0.5 < large["bytes_ratio_to_small"] < 2, "retag traffic must not grow with the image"


def test_copy_cold_moves_the_image_and_warm_moves_no_blob(tmp_path: Path) -> None:
    results = smoke("copy", tmp_path)
    cold = results["deployctl copy 1 MB cold"]["extra"]
    warm = results["deployctl copy 1 MB warm"]["extra"]
    crane_cold = results["crane copy 1 MB cold"]["extra"]
    assert cold["blobs_copied"] == 5  # 4 layers + the config
    assert cold["blob_bytes_copied"] >= cold["image_bytes"]
    assert cold["bytes_to_target"] >= cold["image_bytes"], "the proxy saw the blobs go up"
    assert crane_cold["bytes_to_target"] >= crane_cold["image_bytes"]
    assert cold["ratio_vs_crane"] > 0
    assert warm["blobs_copied"] == 0
    assert warm["blob_bytes_copied"] == 0
    assert warm["blobs_present"] == 5
    assert warm["bytes_to_target"] < 64 * KIB, "a warm copy sends HEADs and one manifest"
    assert results["deployctl copy 1 MB warm"]["median"] < 5
    for label in ("4x256 KB", "1x1 MB"):
        memory = results[f"deployctl copy peak RSS, {label}"]["extra"]
        assert 5 < memory["peak_rss_mib"] < 200, memory
        assert results[f"crane copy peak RSS, {label}"]["extra"]["peak_rss_mib"] > 1


def test_verification_overhead_is_measured_on_a_passing_release(tmp_path: Path) -> None:
    results = smoke("verification", tmp_path)
    checked = results["http + metric: checks' wall time"]["extra"]
    assert checked["configured_s"] == 3.0
    assert results["http + metric: checks' wall time"]["median"] >= 3.0, "the checks' own time is never skipped"
    assert "helm test: checks' wall time" in results


def test_ledger_reads_the_same_entries_serially_and_in_parallel(tmp_path: Path) -> None:
    results = smoke("ledger", tmp_path)  # the benchmark itself fails when a read misses or reorders an entry
    serial = results["read 40 entries, one GET at a time (moto + 20 ms per request)"]
    parallel = results["read 40 entries, 8 at a time (moto + 20 ms per request)"]
    assert serial["median"] >= 40 * 0.02, "the proxy held each GET for its delay"
    assert parallel["extra"]["vs_serial"] > 0 and parallel["extra"]["delay_s"] == 0.02
    assert "read 40 entries, 8 at a time (moto on loopback)" in results


def test_helm_lookup_times_both_lookups_of_one_release_among_many(tmp_path: Path) -> None:
    results = smoke("helm_lookup", tmp_path)
    where = "one release among 3 x 2 revisions"
    assert set(results) == {f"helm list --filter ({where})", f"helm history --max 1 ({where})"}
    assert results[f"helm history --max 1 ({where})"]["extra"]["secrets"] == 6
    assert results[f"helm history --max 1 ({where})"]["extra"]["vs_list"] > 0
