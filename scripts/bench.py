"""`make bench`: the figures behind docs/PERFORMANCE.md, printed and written there.

For each model of the catalogue (chalicelib/data/models.json; --models picks some):
- the labeller: images/s on preprocessed tensors (the model-only bound) and from image
  bytes (decode + preprocess + model), at batch 1, 8 and 32; ms/image on one thread;
- the pipeline in local mode: --images real photos of mixed sizes (distinct bytes)
  submitted to the real `chalice local` by 8 clients, until every one is CLASSIFIED:
  images/s, and its ratios to the model-only bound and to the labeller of the same run;
- on the very same photos, in each run beside the pipeline's: the straightforward script
  a user would write instead (tools/bench/script_baseline.py), and the labelling worker
  alone, without HTTP, beside the in-process labeller at the stream's batch size
  (tools/bench/worker.py); pipeline ÷ script and worker ÷ labeller;
- cold start: a new process importing the app and labelling its first image; peak memory.
And for the API (labelling off): p50/p99 latency of GET /images/{id} and of an upload
submit at 1, 8 and 32 clients, beside a trivial route of the same server; and what the
API key check costs GET /images/{id}: a server checking keys beside one with
IMAGELABELLER_REQUIRE_API_KEYS=false, 8 clients, --requests each (tools/bench/auth_latency.py).

Each figure is the median over --runs runs (the key check's: one run, in which the two
servers take turns). Writes docs/PERFORMANCE.md (between its bench marks),
docs/performance.png, docs/performance.json, and the cost table of docs/COST.md
(scripts/cost.py), unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.config import Settings  # noqa: E402
from chalicelib.domain.model_catalogue import CATALOGUE  # noqa: E402
from tools.bench import report  # noqa: E402
from tools.bench.auth_latency import auth_latency  # noqa: E402
from tools.bench.cold_start import cold_start  # noqa: E402
from tools.bench.labeller import labeller_throughput  # noqa: E402
from tools.bench.local_server import api_latency, pipeline_throughput  # noqa: E402
from tools.bench.photos import mixed_photos, small_jpeg  # noqa: E402
from tools.bench.script_baseline import script_throughput  # noqa: E402
from tools.bench.timing import median_of_runs  # noqa: E402
from tools.bench.worker import worker_throughput  # noqa: E402

DOCS = ROOT / "docs"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def measure(args: argparse.Namespace) -> report.Results:
    results = report.Results(
        machine=machine(),
        runs=args.runs,
        pipeline_images=args.images,
        labeller_pool=args.pool,
        models=list(args.models),
    )
    variant = int(time.time())  # fresh bytes per bench: nothing is answered from a cache
    # The photos of the pipeline, the script and the worker: the same distinct bytes.
    photos = mixed_photos(args.images, variant)
    images = [photo.data for photo in photos]
    for model in args.models:
        say(f"{model}: labeller")
        results.labeller[model] = labeller_throughput(model, args.pool, args.repeats)
        say(f"{model}: pipeline, script, worker alone: {args.images} photos x {args.runs} runs")
        pipeline_runs, script_runs, worker_runs = [], [], []
        for n in range(args.runs):  # taking turns, so that the ratios share the noise
            pipeline_runs.append(pipeline_throughput(photos, model, variant + 10_000 * n))
            script_runs.append(script_throughput(model, images))
            worker_runs.append(worker_throughput(model, images, small_jpeg(-2 - n)))
        results.pipeline[model] = median_of_runs(pipeline_runs)
        results.script[model] = median_of_runs(script_runs)
        results.worker[model] = median_of_runs(worker_runs)
        results.per_run[model] = {
            "pipeline_images_per_s": [run["images_per_s"] for run in pipeline_runs],
            "script_images_per_s": [run["images_per_s"] for run in script_runs],
            "worker_images_per_s": [run["worker_images_per_s"] for run in worker_runs],
            "labeller_images_per_s": [run["labeller_images_per_s"] for run in worker_runs],
        }
        say(f"{model}: cold start x {args.runs}")
        photo = small_jpeg(-1)
        results.cold_start[model] = median_of_runs(
            [cold_start(photo, model) for _ in range(args.runs)]
        )
    say(f"API latency, {args.requests} requests per route and level x {args.runs} runs")
    results.latency = median_of_runs(
        [api_latency(args.requests, variant + 10_000 * n) for n in range(args.runs)]
    )
    say(f"API key check, {args.requests} GETs per client on each of two servers")
    results.auth = auth_latency(args.requests)
    return results


def write_documents(results: report.Results, started: float) -> None:
    figures = report.figures_json(results, Settings().stream_batch_size)
    (DOCS / "performance.json").write_text(json.dumps(figures, indent=2) + "\n")
    report.write_plot(results, DOCS / "performance.png")
    today = datetime.date.today().isoformat()
    generated = (
        f"Measured {today} by `make bench` in {time.perf_counter() - started:.0f} s on "
        f"{results.machine}; medians of {results.runs} runs.\n\n"
        f"{report.markdown_tables(results)}\n\n![make bench](performance.png)"
    )
    report.replace_between_marks(DOCS / "PERFORMANCE.md", generated)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cost.py"), "--write-doc", str(DOCS / "COST.md")],
        check=True,
        cwd=ROOT,
    )


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--images",
        type=int,
        default=200,
        help="distinct photos in the pipeline, script and worker runs",
    )
    parser.add_argument("--pool", type=int, default=64, help="photos in the labeller runs")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per batch size")
    parser.add_argument(
        "--requests",
        type=int,
        default=200,
        help="per route and level (at least 20 per client); per client in the key check",
    )
    parser.add_argument(
        "--models", nargs="+", default=list(CATALOGUE.names), choices=CATALOGUE.names
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = measure(args)
    print(report.text_tables(results))
    if not args.no_write:
        write_documents(results, started)
        say("wrote docs/PERFORMANCE.md, docs/performance.png, docs/performance.json, COST.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
