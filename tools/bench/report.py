"""The benchmark's tables (text and markdown), its JSON figures and its plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.bench import auth_latency
from tools.bench.labeller import BATCH_SIZES
from tools.bench.local_server import CLIENT_COUNTS
from tools.bench.markers import MissingMarkersError, replace_between

ROUTES = {
    "trivial": "GET /health (trivial)",
    "get": "GET /images/{id}",
    "upload": "POST /images (upload)",
}
START_MARK = "<!-- bench:start -->"
END_MARK = "<!-- bench:end -->"


@dataclass
class Results:
    """Every figure of one `make bench`: medians over its runs."""

    machine: str
    runs: int
    pipeline_images: int
    labeller_pool: int
    models: list[str]
    labeller: dict[str, dict[str, float]] = field(default_factory=dict)
    pipeline: dict[str, dict[str, float]] = field(default_factory=dict)
    cold_start: dict[str, dict[str, float]] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    auth: dict[str, float] = field(default_factory=dict)  # tools/bench/auth_latency.py
    # The straightforward script on the pipeline's photos (tools/bench/script_baseline.py).
    script: dict[str, dict[str, float]] = field(default_factory=dict)
    # The labelling worker without HTTP, and the labeller on the same bytes (worker.py).
    worker: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per model, each images/s figure of every run (the medians above are taken from them).
    per_run: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def model_bound(self, model: str) -> float:
        """The model-only images/s at its best batch size: the pipeline's ceiling."""
        figures = self.labeller[model]
        return max(figures[f"model_b{batch}_images_per_s"] for batch in BATCH_SIZES)

    def pipeline_ratio(self, model: str) -> float:
        return self.pipeline[model]["images_per_s"] / self.model_bound(model)

    def labeller_ratio(self, model: str) -> float:
        """The pipeline against the labeller's own best end-to-end rate: what the service
        (HTTP, storage, stream, writes) adds to decoding and the model."""
        figures = self.labeller[model]
        best = max(figures[f"labeller_b{batch}_images_per_s"] for batch in BATCH_SIZES)
        return self.pipeline[model]["images_per_s"] / best

    def script_ratio(self, model: str) -> float:
        """The pipeline against the script a user would write instead, same photos."""
        return self.pipeline[model]["images_per_s"] / self.script[model]["images_per_s"]

    def worker_ratio(self, model: str) -> float:
        """The labelling worker alone against the labeller it calls, same bytes and batch."""
        figures = self.worker[model]
        return figures["worker_images_per_s"] / figures["labeller_images_per_s"]

    def ratios(self, model: str) -> dict[str, float]:
        return {
            "pipeline_to_script": self.script_ratio(model),
            "pipeline_to_model_only": self.pipeline_ratio(model),
            "pipeline_to_labeller": self.labeller_ratio(model),
            "worker_to_labeller": self.worker_ratio(model),
        }


def model_rows(results: Results) -> list[tuple[str, list[float], str]]:
    """(figure, one value per model, number format) for the first table."""
    rows: list[tuple[str, list[float], str]] = []

    def add(name: str, values: list[float], spec: str = ".1f") -> None:
        rows.append((name, values, spec))

    models = results.models
    for batch in BATCH_SIZES:
        add(
            f"model only, batch {batch} (images/s)",
            [results.labeller[m][f"model_b{batch}_images_per_s"] for m in models],
        )
    for batch in BATCH_SIZES:
        add(
            f"decode + preprocess + model, batch {batch} (images/s)",
            [results.labeller[m][f"labeller_b{batch}_images_per_s"] for m in models],
        )
    add(
        "decode + preprocess + model, one thread (ms/image)",
        [results.labeller[m]["labeller_one_thread_ms_per_image"] for m in models],
    )
    add(
        f"pipeline, {results.pipeline_images} photos submit → all CLASSIFIED (images/s)",
        [results.pipeline[m]["images_per_s"] for m in models],
    )
    add(
        "pipeline ÷ model-only bound (goal ≥ 0.8)",
        [results.pipeline_ratio(m) for m in models],
        ".2f",
    )
    add(
        "pipeline ÷ labeller end to end, best batch",
        [results.labeller_ratio(m) for m in models],
        ".2f",
    )
    add(
        f"straightforward script, the same {results.pipeline_images} photos (images/s)",
        [results.script[m]["images_per_s"] for m in models],
    )
    add("pipeline ÷ script (goal ≥ 1.0)", [results.script_ratio(m) for m in models], ".2f")
    add(
        f"labelling worker alone, {results.pipeline_images} photos (images/s)",
        [results.worker[m]["worker_images_per_s"] for m in models],
    )
    add(
        "in-process labeller, same photos at the stream's batch size (images/s)",
        [results.worker[m]["labeller_images_per_s"] for m in models],
    )
    add(
        "worker alone ÷ in-process labeller (goal ≥ 0.9)",
        [results.worker_ratio(m) for m in models],
        ".2f",
    )
    add(
        "one photo alone: submit → CLASSIFIED, polling (ms)",
        [results.pipeline[m]["one_image_ms"] for m in models],
    )
    add("local server peak RSS (MB)", [results.pipeline[m]["server_peak_rss_mb"] for m in models])
    add("cold start: import app (s)", [results.cold_start[m]["import_s"] for m in models], ".2f")
    add(
        "cold start: first label (s)",
        [results.cold_start[m]["first_label_s"] for m in models],
        ".2f",
    )
    add("cold start: total (s)", [results.cold_start[m]["total_s"] for m in models], ".2f")
    add("cold start: peak RSS (MB)", [results.cold_start[m]["peak_rss_mb"] for m in models])
    add(
        "labelling process peak RSS after a batch of 16 mixed photos (MB)",
        [results.cold_start[m]["batch_peak_rss_mb"] for m in models],
    )
    return rows


def latency_rows(results: Results) -> list[list[str]]:
    """route, clients, p50, p99, and both as ratios to the trivial route's."""
    rows = []
    for clients in CLIENT_COUNTS:
        base_p50 = results.latency[f"trivial_c{clients}_p50_ms"]
        base_p99 = results.latency[f"trivial_c{clients}_p99_ms"]
        for route, title in ROUTES.items():
            p50 = results.latency[f"{route}_c{clients}_p50_ms"]
            p99 = results.latency[f"{route}_c{clients}_p99_ms"]
            rows.append(
                [
                    title,
                    str(clients),
                    f"{p50:.1f}",
                    f"{p99:.1f}",
                    f"{p50 / base_p50:.2f}",
                    f"{p99 / base_p99:.2f}",
                ]
            )
    return rows


LATENCY_HEADER = ["route", "clients", "p50 (ms)", "p99 (ms)", "p50 ÷ trivial", "p99 ÷ trivial"]


def text_tables(results: Results) -> str:
    header = ["figure", *results.models]
    body = [
        [name, *(format(value, spec) for value in values)]
        for name, values, spec in model_rows(results)
    ]
    return "\n\n".join(
        [
            _aligned([header, *body]),
            _aligned([LATENCY_HEADER, *latency_rows(results)]),
            _aligned([auth_latency.TABLE_HEADER, *auth_latency.table_rows(results.auth)]),
        ]
    )


def markdown_tables(results: Results) -> str:
    header = ["figure", *(f"`{model}`" for model in results.models)]
    body = [
        [name, *(format(value, spec) for value in values)]
        for name, values, spec in model_rows(results)
    ]
    return "\n\n".join(
        [
            _markdown([header, *body]),
            _markdown([LATENCY_HEADER, *latency_rows(results)]),
            _markdown([auth_latency.TABLE_HEADER, *auth_latency.table_rows(results.auth)]),
        ]
    )


def figures_json(results: Results, label_batch_size: int) -> dict[str, Any]:
    """What scripts/cost.py reads (docs/performance.json), plus every figure, rounded to
    what the machine's noise leaves meaningful."""
    default = results.models[0]
    figures = {
        "model": default,
        "labeller_ms_per_image_one_thread": results.labeller[default][
            "labeller_one_thread_ms_per_image"
        ],
        "label_batch_size": label_batch_size,
        "cold_start_s": results.cold_start[default]["total_s"],
        # What the labelling function must hold: a whole stream batch of large photos.
        "peak_rss_mb": results.cold_start[default]["batch_peak_rss_mb"],
        "submit_ms_p50": results.latency["upload_c1_p50_ms"],
        "machine": results.machine,
        "runs": results.runs,
        "labeller": results.labeller,
        "pipeline": results.pipeline,
        "pipeline_ratio": {model: results.pipeline_ratio(model) for model in results.models},
        "script": results.script,
        "worker": results.worker,
        "ratios": {model: results.ratios(model) for model in results.models},
        "per_run": results.per_run,
        "cold_start": results.cold_start,
        "latency": results.latency,
        "auth": results.auth,
    }
    rounded: dict[str, Any] = _rounded(figures)
    return rounded


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_rounded(inner) for inner in value]
    return value


def write_plot(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (throughput, latency) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    names = [f"model\nb{b}" for b in BATCH_SIZES] + [f"labeller\nb{b}" for b in BATCH_SIZES]
    names += ["script", "worker\nalone", "pipeline"]
    width = 0.8 / len(results.models)
    for index, model in enumerate(results.models):
        figures = results.labeller[model]
        values = [figures[f"model_b{b}_images_per_s"] for b in BATCH_SIZES]
        values += [figures[f"labeller_b{b}_images_per_s"] for b in BATCH_SIZES]
        values.append(results.script[model]["images_per_s"])
        values.append(results.worker[model]["worker_images_per_s"])
        values.append(results.pipeline[model]["images_per_s"])
        positions = [n + index * width for n in range(len(names))]
        throughput.bar(positions, values, width, label=model)
    throughput.set_xticks([n + width * (len(results.models) - 1) / 2 for n in range(len(names))])
    throughput.set_xticklabels(names, fontsize=8)
    throughput.set_ylabel("images/s")
    throughput.set_title("Throughput (higher is better)")
    throughput.legend()
    for route, title in ROUTES.items():
        p50 = [results.latency[f"{route}_c{c}_p50_ms"] for c in CLIENT_COUNTS]
        p99 = [results.latency[f"{route}_c{c}_p99_ms"] for c in CLIENT_COUNTS]
        line = latency.plot(CLIENT_COUNTS, p50, marker="o", label=f"{title} p50")[0]
        latency.plot(CLIENT_COUNTS, p99, marker="x", linestyle="--", color=line.get_color())
    latency.set_xscale("log", base=2)
    latency.set_yscale("log")
    latency.set_xticks(CLIENT_COUNTS, [str(c) for c in CLIENT_COUNTS])
    latency.set_xlabel("concurrent clients")
    latency.set_ylabel("ms (solid p50, dashed p99)")
    latency.set_title("API latency, labelling off (lower is better)")
    latency.legend(fontsize=8)
    figure.suptitle(f"make bench: {results.machine}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def replace_between_marks(document: Path, generated: str) -> None:
    """Put `generated` between the bench marks of `document`, keeping the prose around."""
    try:
        text = replace_between(document.read_text(), generated, START_MARK, END_MARK)
    except MissingMarkersError:
        raise RuntimeError(f"{document} has no {START_MARK} … {END_MARK} section") from None
    document.write_text(text)


def _aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)
