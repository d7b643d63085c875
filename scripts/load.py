"""A longer load run by hand: `.venv/bin/python scripts/load.py --requests 5000 --concurrency 32`.

Starts `chalice local` (or uses --base-url) and a loopback photo server, runs the mixed
load of tests/load/loadgen.py, waits for every accepted image to finish, and prints the
requests, the concurrency and the answers by status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.load.loadgen import format_report, run_load, unfinished  # noqa: E402
from tests.support import loopback_server, photo_png  # noqa: E402
from tests.system.chalice_local import ChaliceLocal  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--base-url", help="a running ImageLabeller (default: start one)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("IMAGELABELLER_API_KEY"),
        help="the key to send to --base-url (default: $IMAGELABELLER_API_KEY; a server "
        "this starts makes its own)",
    )
    args = parser.parse_args(argv)
    with loopback_server() as photos, tempfile.TemporaryDirectory() as folder:
        photo_url = photos.serve("/coffee.png", photo_png("coffee"))
        server = None
        api_key = args.api_key
        if not args.base_url:
            # A load run is one key's requests: its rate limit must not be what it measures.
            server = ChaliceLocal(
                Path(folder) / "data", Path(folder) / "chalice.log", rate_limit_per_minute="1000000"
            ).start()
            api_key = server.api_key
        base_url = args.base_url or server.base_url  # type: ignore[union-attr]
        try:
            report = asyncio.run(
                run_load(base_url, photo_url, args.requests, args.concurrency, api_key=api_key)
            )
            lost = asyncio.run(unfinished(base_url, report.accepted, timeout=600, api_key=api_key))
        finally:
            if server:
                server.stop()
    print(f"concurrency {args.concurrency}")
    print(format_report(report))
    print(
        f"5xx: {report.server_errors}, wrong answers: {len(report.unexpected)}, lost: {len(lost)}"
    )
    for problem in report.unexpected[:10]:
        print("  " + problem)
    return 0 if not (report.server_errors or report.unexpected or lost) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
