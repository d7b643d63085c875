"""`make bench` end to end, small: every figure is measured and printed (no timing
asserted; the figures themselves are for docs/PERFORMANCE.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
        "cold start: total (s)",
        "POST /images (upload)",
        "keys checked",
        "keys not checked",
        "checked ÷ unchecked",
    ):
        matching = [line for line in lines if line.startswith(figure)]
        assert matching, f"{figure!r} missing from:\n{finished.stdout}"
        assert float(matching[-1].split()[-1]) > 0
