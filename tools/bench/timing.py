"""Medians and percentiles of repeated timings."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    """The median wall time of `work`, after one call that warms caches up."""
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.5 is the median, 0.99 the p99)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def median_of_runs(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Figure by figure, the median over several runs of the same benchmark."""
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")
