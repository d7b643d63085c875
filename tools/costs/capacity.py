"""How many images a second the deployed stages label, past one machine: the DynamoDB
stream runs one batch per shard at a time, or as many as the mapping's parallelisation
factor allows, and each batch takes the per-image time `make bench` measured plus the
waiting on AWS that COST.md assumes (docs/PERFORMANCE.md, "Past one machine").

    .venv/bin/python -m tools.costs.capacity             # the tables, 1 million images a day
    .venv/bin/python -m tools.costs.capacity --images-per-day 250000
    .venv/bin/python -m tools.costs.capacity --write-doc docs/PERFORMANCE.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.bench.markers import MissingMarkersError, replace_between
from tools.costs.inputs import CostInputError, Measured, Workload, load_measured, stage_memory
from tools.costs.model import (
    HOURS_PER_MONTH,
    ONNX,
    SAGEMAKER,
    Row,
    cost_rows,
    one_thread_ms,
    sagemaker_instances_needed,
)
from tools.costs.prices import US_WEST_2
from tools.costs.requests import representative_item_sizes

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "performance.json"
CHALICE_DIR = ROOT / ".chalice"
ONNX_STAGE = "prod-ca-central-1"
SAGEMAKER_STAGE = "prod-us-west-2"
STREAM_FUNCTION = "LabelNewImages"
# chalicelib/adapters/sagemaker.py: one batch calls the endpoint from this many threads.
SAGEMAKER_THREADS = 4
SHARDS = (1, 2, 4)
FACTORS = (1, 2, 4, 10)
# An outage as long as the mapping's MaximumRecordAgeInSeconds, what a record may wait.
OUTAGE_SECONDS = 3600
MARKER_START = "<!-- capacity:start -->"
MARKER_END = "<!-- capacity:end -->"


@dataclass(frozen=True)
class LabellingStage:
    """What one batch of the labelling function spends per image, and what bounds it."""

    name: str
    compute_ms: float  # the function's own work per image (decode and model), one thread
    io_ms: float  # waiting on S3 and DynamoDB per image, one image after another
    endpoint_ms: float = 0.0  # the SageMaker endpoint's time per image; 0: no endpoint
    instances: int = 0  # the endpoint's instances, each serving one image at a time
    threads: int = SAGEMAKER_THREADS


def onnx_stage(measured: Measured, workload: Workload) -> LabellingStage:
    compute = one_thread_ms(measured.labeller_ms_per_image_one_thread, workload.label_memory_mb)
    return LabellingStage(
        f"in-Lambda ONNX, {workload.label_memory_mb:,} MB",
        compute,
        workload.label_io_ms_per_image,
    )


def sagemaker_stage(workload: Workload, instances: int) -> LabellingStage:
    return LabellingStage(
        f"SageMaker, {instances} instance{'s' if instances > 1 else ''}",
        0.0,
        workload.label_io_ms_per_image,
        workload.sagemaker_ms_per_image,
        instances,
    )


def batch_seconds(stage: LabellingStage, batch: int) -> float:
    """One invocation's time for `batch` images: each image's own work and waiting one after
    another, and the endpoint's calls spread over the threads it can serve at once."""
    own = batch * (stage.compute_ms + stage.io_ms)
    calls = 0.0
    if stage.endpoint_ms:
        calls = batch * stage.endpoint_ms / min(stage.threads, stage.instances, batch)
    return (own + calls) / 1000


def endpoint_bound(stage: LabellingStage) -> float:
    """Images a second the endpoint's instances serve; infinite without an endpoint."""
    if not stage.endpoint_ms:
        return math.inf
    return stage.instances * 1000 / stage.endpoint_ms


def labelling_rate(stage: LabellingStage, shards: int, factor: int, batch: int) -> float:
    """Images a second with every shard's `factor` batches running: S x F x B / T(B),
    no more than the endpoint serves."""
    batches = shards * factor
    return min(batches * batch / batch_seconds(stage, batch), endpoint_bound(stage))


def busy_executions(stage: LabellingStage, rate: float, batch: int) -> float:
    """Labelling executions running on average at `rate` images a second (Little's law:
    arrivals x time each; at most S x F can run)."""
    return rate * batch_seconds(stage, batch) / batch


def shards_needed(stage: LabellingStage, rate: float, factor: int, batch: int) -> int | None:
    """The fewest shards that keep up with `rate`; None when the endpoint cannot."""
    if rate >= endpoint_bound(stage):
        return None
    one_shard = factor * batch / batch_seconds(stage, batch)
    return math.floor(rate / one_shard) + 1


def drain_minutes(capacity: float, rate: float, outage_seconds: float) -> float:
    """Minutes to label the backlog of an outage while new images keep coming."""
    if capacity <= rate:
        return math.inf
    return outage_seconds * rate / (capacity - rate) / 60


def api_latency_ms(measured: Measured, workload: Workload) -> float:
    """The API function's time per image: a submit (measured here, scaled to its memory,
    plus the AWS calls COST.md assumes) and the result reads."""
    submit = one_thread_ms(measured.submit_ms_p50, workload.api_memory_mb) + workload.submit_io_ms
    return submit + workload.reads_per_image * workload.read_ms


def api_executions(measured: Measured, workload: Workload, rate: float) -> float:
    """API executions running on average: requests a second x time each."""
    return rate * api_latency_ms(measured, workload) / 1000


def images_per_month(images_per_day: float) -> int:
    """A month as tools/costs counts it: 730 hours."""
    return round(images_per_day * HOURS_PER_MONTH / 24)


def monthly_total(rows: Sequence[Row], option: str) -> float:
    """The option's total a month at the workload's volume, from cost_rows."""
    for row in rows:
        if row.option == option and row.total and row.per_month is not None:
            return row.per_month
    raise CostInputError(f"no monthly total for {option}")


def parallelization_factor(chalice_dir: Path = CHALICE_DIR) -> int:
    """The stream mapping's ParallelizationFactor in the merge template (1 when unset)."""
    merge = json.loads((chalice_dir / "merge-template.json").read_text())
    (event,) = merge["Resources"][STREAM_FUNCTION]["Properties"]["Events"].values()
    return int(event["Properties"].get("ParallelizationFactor", 1))


@dataclass(frozen=True)
class Plan:
    """Everything the tables show, for one volume."""

    measured: Measured
    onnx: Workload
    sagemaker: Workload
    factor: int
    images_per_day: float

    @property
    def rate(self) -> float:
        return self.images_per_day / 86_400

    @property
    def instances(self) -> int:
        """The endpoint's instances that the month's images need (at least one)."""
        return sagemaker_instances_needed(self.sagemaker)


def plan_for(images_per_day: float, results: Path = RESULTS) -> Plan:
    measured = load_measured(results)
    month = images_per_month(images_per_day)
    workloads = []
    for stage in (ONNX_STAGE, SAGEMAKER_STAGE):
        label_mb, api_mb = stage_memory(CHALICE_DIR / "config.json", stage)
        workloads.append(
            Workload(images_per_month=month, label_memory_mb=label_mb, api_memory_mb=api_mb)
        )
    return Plan(measured, workloads[0], workloads[1], parallelization_factor(), images_per_day)


def rate_text(rate: float) -> str:
    return f"{rate:,.1f}"


def capacity_table(plan: Plan) -> str:
    batch = plan.measured.label_batch_size
    stages = [
        onnx_stage(plan.measured, plan.onnx),
        sagemaker_stage(plan.sagemaker, 1),
        sagemaker_stage(plan.sagemaker, plan.instances),
    ]
    header = ["labelling stage", "shards S", *[f"F = {factor}" for factor in FACTORS]]
    lines = [_row(header), _row(["---", "---:", *["---:"] * len(FACTORS)])]
    seen = set()
    for stage in stages:
        if stage.name in seen:
            continue
        seen.add(stage.name)
        for shards in SHARDS:
            cells = [rate_text(labelling_rate(stage, shards, f, batch)) for f in FACTORS]
            lines.append(_row([stage.name, str(shards), *cells]))
    return "\n".join(lines)


def volume_table(plan: Plan) -> str:
    batch, factor, rate = plan.measured.label_batch_size, plan.factor, plan.rate
    month = plan.onnx.images_per_month
    columns = [
        (onnx_stage(plan.measured, plan.onnx), plan.onnx, ONNX),
        (sagemaker_stage(plan.sagemaker, plan.instances), plan.sagemaker, SAGEMAKER),
    ]
    sizes = representative_item_sizes()
    rows: list[list[str]] = [
        [f"{plan.images_per_day:,.0f} images a day", *[c[0].name for c in columns]]
    ]
    rows.append(["---", *["---:"] * len(columns)])

    def add(label: str, values: Sequence[str]) -> None:
        rows.append([label, *values])

    add("mean rate (images/s)", [rate_text(rate)] * len(columns))
    add(
        f"seconds per batch of {batch}, T(B)",
        [f"{batch_seconds(stage, batch):.2f}" for stage, _, _ in columns],
    )
    add(
        f"capacity at S = 1, F = {factor} (images/s)",
        [rate_text(labelling_rate(stage, 1, factor, batch)) for stage, _, _ in columns],
    )
    needed = [shards_needed(stage, rate, factor, batch) for stage, _, _ in columns]
    add(f"shards needed at F = {factor}", ["—" if n is None else str(n) for n in needed])
    add(
        f"labelling executions busy at the mean (at most S x F = {factor} a shard)",
        [f"{busy_executions(stage, rate, batch):.2f}" for stage, _, _ in columns],
    )
    add(
        "API executions busy at the mean (requests/s x latency)",
        [
            f"{api_executions(plan.measured, workload, rate):.2f} "
            f"({api_latency_ms(plan.measured, workload):.0f} ms/image)"
            for _, workload, _ in columns
        ],
    )
    add(
        f"an hour's backlog labelled in (minutes, S = 1, F = {factor})",
        [
            f"{drain_minutes(labelling_rate(stage, 1, factor, batch), rate, OUTAGE_SECONDS):.0f}"
            for stage, _, _ in columns
        ],
    )
    totals = [
        monthly_total(cost_rows(US_WEST_2, plan.measured, workload, sizes), option)
        for _, workload, option in columns
    ]
    add(f"cost a month at {month:,} images (tools/costs)", [f"${total:,.0f}" for total in totals])
    add("cost per 1,000 images", [f"${1000 * total / month:.4f}" for total in totals])
    return "\n".join(_row(row) for row in rows)


def inputs_line(plan: Plan, results: str) -> str:
    measured = plan.measured
    return (
        f"Inputs: {results} ({measured.model}: labeller "
        f"{measured.labeller_ms_per_image_one_thread:g} ms/image on one thread, "
        f"cold start {measured.cold_start_s:g} s, submit {measured.submit_ms_p50:g} ms, "
        "stream batch "
        f"B = {measured.label_batch_size}); ParallelizationFactor F = {plan.factor} "
        f"(.chalice/merge-template.json); assumed as in COST.md: "
        f"{plan.onnx.label_io_ms_per_image:g} ms/image waiting on S3 and DynamoDB, submit "
        f"+{plan.onnx.submit_io_ms:g} ms, {plan.onnx.reads_per_image} read of "
        f"{plan.onnx.read_ms:g} ms, SageMaker {plan.sagemaker.sagemaker_ms_per_image:g} "
        f"ms/image from {SAGEMAKER_THREADS} threads a batch."
    )


def report(plan: Plan, results: str) -> str:
    return (
        "\n\n".join(
            [
                inputs_line(plan, results),
                "Images/s the labelling function keeps up with "
                f"(B = {plan.measured.label_batch_size}):",
                capacity_table(plan),
                volume_table(plan),
            ]
        )
        + "\n"
    )


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images-per-day", type=float, default=1_000_000)
    parser.add_argument("--results", type=Path, default=RESULTS, help="make bench's JSON")
    parser.add_argument("--write-doc", type=Path, help="put the tables in this doc")
    arguments = parser.parse_args(list(argv))
    try:
        if arguments.images_per_day <= 0:
            raise CostInputError("--images-per-day must be more than 0")
        plan = plan_for(arguments.images_per_day, arguments.results)
        try:
            shown = str(arguments.results.resolve().relative_to(ROOT))
        except ValueError:
            shown = str(arguments.results)
        tables = report(plan, shown)
        if arguments.write_doc is None:
            print(tables, end="")
        else:
            document = arguments.write_doc.read_text()
            updated = replace_between(document, tables, MARKER_START, MARKER_END)
            arguments.write_doc.write_text(updated)
            print(f"wrote the capacity tables into {arguments.write_doc}")
    except (CostInputError, MissingMarkersError, OSError) as error:
        print(f"capacity: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
