"""`make bench` end to end, small: every figure is measured and printed (no timing
asserted; the figures themselves are for docs/PERFORMANCE.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_measures_and_prints_every_figure() -> None:
    command = [sys.executable, "scripts/bench.py", "--runs", "1", "--images", "12"]
    command += ["--pool", "8", "--repeats", "1", "--requests", "32", "--no-write"]
    command += ["--models", "efficientnet-lite0"]
    finished = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.splitlines()
    for figure in (
        "model only, batch 32 (images/s)",
        "decode + preprocess + model, batch 8 (images/s)",
        "pipeline, 12 photos submit → all CLASSIFIED (images/s)",
        "pipeline ÷ model-only bound",
        "straightforward script, the same 12 photos (images/s)",
        "pipeline ÷ script",
        "labelling worker alone, 12 photos (images/s)",
        "in-process labeller, same photos at the stream's batch size (images/s)",
        "worker alone ÷ in-process labeller",
        "cold start: total (s)",
        "POST /images (upload)",
        "keys checked",
        "keys not checked",
        "checked ÷ unchecked",
    ):
        assert value(lines, figure) > 0, f"{figure!r} missing from:\n{finished.stdout}"
    # The ratios divide the figures printed beside them, from the same run.
    pipeline = value(lines, "pipeline, 12 photos")
    script = value(lines, "straightforward script")
    assert value(lines, "pipeline ÷ script") == pytest.approx(pipeline / script, abs=0.02)
    worker = value(lines, "labelling worker alone")
    labeller = value(lines, "in-process labeller")
    assert value(lines, "worker alone ÷") == pytest.approx(worker / labeller, abs=0.02)


def value(lines: list[str], figure: str) -> float:
    """The last number of the table line starting with `figure` (0 if there is none)."""
    matching = [line for line in lines if line.startswith(figure)]
    return float(matching[-1].split()[-1]) if matching else 0.0
