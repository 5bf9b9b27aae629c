"""The benchmark's own arithmetic: percentiles, /proc readings, py-spy summaries, the pass/fail rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench._support import percentile, proc_sample, profile_summary
from bench.operator import Row


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([3.0], 50, 3.0),
        ([1.0, 2.0, 3.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([float(x) for x in range(1, 21)], 95, 19.05),
        ([float(x) for x in range(1, 101)], 95, 95.05),
    ],
)
def test_percentile(values: list[float], pct: float, expected: float) -> None:
    assert percentile(values, pct) == pytest.approx(expected)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_proc_sample_reads_this_process() -> None:
    sample = proc_sample(os.getpid())
    assert 5 < sample.rss_mb <= sample.peak_rss_mb
    before = sample.cpu_s
    sum(i * i for i in range(300_000))  # burn a little CPU
    assert proc_sample(os.getpid()).cpu_s >= before


def test_profile_summary_counts_self_and_inclusive_shares(tmp_path: Path) -> None:
    collapsed = tmp_path / "stacks.txt"
    collapsed.write_text(
        'process 1:"python";thread (0x1);_worker (concurrent/futures/thread.py:83);'
        "reconcile (djl_operator/reconcile.py:10);build_tarball (djl_operator/artifacts/package.py:5);"
        "GzipFile.write (gzip.py:289) 6\n"
        'process 1:"python";thread (0x1);_worker (concurrent/futures/thread.py:83);'
        "reconcile (djl_operator/reconcile.py:12);_describe (djl_operator/sagemaker_adapter.py:9);"
        "SocketIO.readinto (socket.py:706) 3\n"
        'process 1:"python";thread (0x2);select (selectors.py:468) 1\n'
        "garbage line without a count\n"
    )
    summary = profile_summary(collapsed, n=3)
    assert summary["samples"] == 10
    assert summary["self"] == [
        ("GzipFile.write (gzip.py)", 60.0),
        ("SocketIO.readinto (socket.py)", 30.0),
        ("select (selectors.py)", 10.0),
    ]
    # A function on two lines of one stack counts once; line numbers do not split it.
    assert summary["inclusive_project"] == [
        ("reconcile (djl_operator/reconcile.py)", 90.0),
        ("build_tarball (djl_operator/artifacts/package.py)", 60.0),
        ("_describe (djl_operator/sagemaker_adapter.py)", 30.0),
    ]


@pytest.mark.parametrize(
    ("measured", "target", "ratio", "passed"),
    [
        (14.0, 7.5, 14 / 7.5, False),
        (7.0, 7.5, 7 / 7.5, True),
        (7.5, 7.5, 1.0, True),
        (0.0, 0.0, 0.0, True),
        (10399.0, 0.0, float("inf"), False),
        (3.0, None, None, None),
    ],
)
def test_row_ratio_and_verdict(measured: float, target: float | None, ratio: float | None, passed: bool | None) -> None:
    row = Row("m", measured, "calls", target)
    assert row.ratio == (pytest.approx(ratio) if ratio not in (None, float("inf")) else ratio)
    assert row.passed is passed
    assert row.to_json()["passed"] is passed
