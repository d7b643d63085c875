"""Cold start: a fresh process imports the app and labels its first image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cold_start(photo: bytes, model: str) -> dict[str, float]:
    """import_s, first_label_s and peak_rss_mb of one new process (local backend, ONNX)."""
    environment = dict(
        os.environ,
        IMAGELABELLER_BACKEND="local",
        IMAGELABELLER_LABELLER="onnx",
        IMAGELABELLER_MODEL=model,
        IMAGELABELLER_LOCAL_STREAM="false",
    )
    finished = subprocess.run(
        [sys.executable, "-m", "tools.bench.cold_start_probe"],
        input=photo,
        capture_output=True,
        cwd=ROOT,
        env=environment,
        timeout=300,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"the cold start probe failed: {finished.stderr.decode()[-2000:]}")
    # Metrics (EMF) go to stdout too; the probe's own figures are its last line.
    last_line = finished.stdout.decode().strip().splitlines()[-1]
    figures: dict[str, float] = json.loads(last_line)
    figures["total_s"] = figures["import_s"] + figures["first_label_s"]
    return figures
