"""`python -m tools.bench.auth_latency`, tiny: both servers are measured and the table
has its shape (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUESTS_PER_CLIENT = 5
CLIENTS = 8


def test_auth_latency_prints_both_servers_and_their_ratios() -> None:
    command = [sys.executable, "-m", "tools.bench.auth_latency"]
    command += ["--requests", str(REQUESTS_PER_CLIENT), "--rounds", "2"]
    finished = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.strip().splitlines()
    assert lines[0] == f"API key check, {REQUESTS_PER_CLIENT * CLIENTS} requests per server:"
    assert lines[1].split()[-4:] == ["p50", "(ms)", "p99", "(ms)"]
    assert [line.split("  ")[0] for line in lines[2:]] == [
        "keys checked",
        "keys not checked (REQUIRE_API_KEYS=false)",
        "checked ÷ unchecked",
    ]
    figures = [[float(cell) for cell in line.split()[-2:]] for line in lines[2:]]
    (checked_p50, checked_p99), (unchecked_p50, unchecked_p99), ratios = figures
    assert 0 < checked_p50 <= checked_p99 and 0 < unchecked_p50 <= unchecked_p99
    # The ratios are of the unrounded figures.
    assert ratios == pytest.approx(
        [checked_p50 / unchecked_p50, checked_p99 / unchecked_p99], abs=0.02
    )
