"""A short load test against the real `chalice local` (longer runs: scripts/load.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.load.loadgen import format_report, run_load, unfinished
from tests.support import loopback_server, photo_png
from tests.system.chalice_local import ChaliceLocal

REQUESTS = 300
CONCURRENCY = 8
# Far above what the run and the polling after it ask of the one key: this test is about
# load, tests/load/test_key_throttle.py about the rate.
RATE_LIMIT_PER_MINUTE = "100000"


def test_mixed_load_gives_no_5xx_loses_no_image_and_answers_bad_input_with_4xx_json(
    tmp_path: Path,
) -> None:
    with loopback_server() as photos:
        photo_url = photos.serve("/coffee.png", photo_png("coffee"))
        server = ChaliceLocal(
            tmp_path / "data", tmp_path / "chalice.log", rate_limit_per_minute=RATE_LIMIT_PER_MINUTE
        ).start()
        key = server.api_key
        try:
            report = asyncio.run(
                run_load(server.base_url, photo_url, REQUESTS, CONCURRENCY, api_key=key)
            )
            print("\n" + format_report(report))
            lost = asyncio.run(
                unfinished(server.base_url, report.accepted, timeout=120, api_key=key)
            )
        finally:
            server.stop()
    assert report.requests == REQUESTS
    assert report.server_errors == 0
    assert report.unexpected == []
    assert len(report.accepted) > REQUESTS // 4
    assert lost == []
