"""The capacity model (tools/costs/capacity.py) of docs/PERFORMANCE.md, "Past one machine",
pinned with examples worked by hand."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from tools.costs import capacity
from tools.costs.capacity import (
    ROOT,
    LabellingStage,
    api_executions,
    batch_seconds,
    busy_executions,
    drain_minutes,
    images_per_month,
    labelling_rate,
    parallelization_factor,
    shards_needed,
)
from tools.costs.inputs import Measured, Workload

MEASURED = Measured(
    model="efficientnet-lite0",
    labeller_ms_per_image_one_thread=20.0,
    label_batch_size=16,
    cold_start_s=0.3,
    peak_rss_mb=300.0,
    submit_ms_p50=5.0,
)
ONNX = LabellingStage("onnx", compute_ms=20.0, io_ms=55.0)
ENDPOINT = LabellingStage("sagemaker", 0.0, io_ms=55.0, endpoint_ms=150.0, instances=1)


def test_an_onnx_batch_takes_each_image_one_after_another() -> None:
    assert batch_seconds(ONNX, 16) == pytest.approx(16 * 75 / 1000)  # 1.2 s


def test_onnx_capacity_grows_with_shards_and_factor_alike() -> None:
    one = labelling_rate(ONNX, 1, 1, 16)
    assert one == pytest.approx(1000 / 75)  # 13.3 images/s: the batch size cancels out
    assert labelling_rate(ONNX, 1, 4, 16) == pytest.approx(4 * one)
    assert labelling_rate(ONNX, 2, 4, 16) == pytest.approx(8 * one)
    assert labelling_rate(ONNX, 4, 10, 8) == pytest.approx(40 * one)


def test_a_sagemaker_batch_spreads_its_calls_over_the_instances_its_threads_reach() -> None:
    # 16 x 55 ms of S3 and DynamoDB, then 16 calls of 150 ms one instance serves in turn.
    assert batch_seconds(ENDPOINT, 16) == pytest.approx(0.88 + 2.4)
    four = LabellingStage("sagemaker", 0.0, 55.0, 150.0, instances=8)
    assert batch_seconds(four, 16) == pytest.approx(0.88 + 0.6)  # 4 threads, not 8
    assert batch_seconds(four, 2) == pytest.approx(0.11 + 0.15)  # 2 images, 2 calls at once


def test_the_endpoint_bounds_a_sagemaker_stage_whatever_the_factor() -> None:
    assert labelling_rate(ENDPOINT, 1, 1, 16) == pytest.approx(16 / 3.28)  # 4.9: idle at times
    for shards, factor in ((1, 2), (1, 4), (4, 10)):
        assert labelling_rate(ENDPOINT, shards, factor, 16) == pytest.approx(1000 / 150)


def test_busy_executions_are_arrivals_times_the_time_each() -> None:
    assert busy_executions(ONNX, 10.0, 16) == pytest.approx(10 * 0.075)


def test_the_shards_needed_keep_up_with_some_room() -> None:
    per_shard = 4 * 1000 / 75  # 53.3 images/s at factor 4
    assert shards_needed(ONNX, 11.6, 4, 16) == 1
    assert shards_needed(ONNX, per_shard, 4, 16) == 2  # exactly full is not keeping up
    assert shards_needed(ONNX, 120.0, 4, 16) == 3
    assert shards_needed(ENDPOINT, 7.0, 4, 16) is None  # more than one instance serves


def test_a_backlog_drains_at_the_spare_capacity() -> None:
    # An hour at 10 images/s is 36,000 images, taken at 40 - 10 = 30 images/s spare.
    assert drain_minutes(40.0, 10.0, 3600) == pytest.approx(20.0)
    assert math.isinf(drain_minutes(10.0, 10.0, 3600))


def test_api_executions_are_requests_times_latency() -> None:
    workload = Workload(api_memory_mb=1769)  # one full vCPU: the measured 5 ms stays 5 ms
    # submit 5 + 60 ms, one read of 10 ms: 75 ms of API time per image
    assert api_executions(MEASURED, workload, 20.0) == pytest.approx(20 * 0.075)


def test_a_month_is_730_hours_as_in_the_cost_model() -> None:
    assert images_per_month(1_000_000) == 30_416_667


def test_the_factor_is_read_from_the_merge_template(tmp_path: Path) -> None:
    properties: dict[str, object] = {"BatchSize": 16}
    merge = {
        "Resources": {
            "LabelNewImages": {"Properties": {"Events": {"E": {"Properties": properties}}}}
        }
    }
    (tmp_path / "merge-template.json").write_text(json.dumps(merge))
    assert parallelization_factor(tmp_path) == 1  # Lambda's default
    properties["ParallelizationFactor"] = 7
    (tmp_path / "merge-template.json").write_text(json.dumps(merge))
    assert parallelization_factor(tmp_path) == 7


def test_the_command_prints_the_tables_for_a_million_images_a_day(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert capacity.main([]) == 0
    printed = capsys.readouterr().out
    assert "| 1,000,000 images a day |" in printed
    assert f"F = {parallelization_factor()}" in printed
    assert "cost a month at 30,416,667 images (tools/costs)" in printed


def test_the_command_refuses_a_volume_of_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert capacity.main(["--images-per-day", "0"]) == 2
    assert "--images-per-day" in capsys.readouterr().err


def test_the_command_writes_the_tables_between_the_docs_marks(tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("# Performance\n<!-- capacity:start -->\nstale\n<!-- capacity:end -->\nafter\n")
    assert capacity.main(["--write-doc", str(doc)]) == 0
    text = doc.read_text()
    assert "stale" not in text and "| 1,000,000 images a day |" in text
    assert text.startswith("# Performance\n<!-- capacity:start -->\nInputs: ")
    assert text.endswith("<!-- capacity:end -->\nafter\n")
    doc.write_text("no marks")
    assert capacity.main(["--write-doc", str(doc)]) == 2


def test_the_performance_doc_holds_what_the_command_prints_for_the_figures_it_names(
    tmp_path: Path,
) -> None:
    """docs/PERFORMANCE.md's "Past one machine" tables are the command's output for the
    measured figures their Inputs line names, with today's template and config. A new
    `make bench` leaves them true of those figures; --write-doc brings them up to date."""
    doc = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    start = doc.index(capacity.MARKER_START) + len(capacity.MARKER_START)
    between = doc[start : doc.index(capacity.MARKER_END)].strip()
    named = re.search(
        r"\((?P<model>[\w-]+): labeller (?P<labeller>[\d.]+) ms/image on one thread, "
        r"cold start (?P<cold>[\d.]+) s, submit (?P<submit>[\d.]+) ms, "
        r"stream batch B = (?P<batch>\d+)\)",
        between,
    )
    assert named, between[:400]
    results = tmp_path / "performance.json"
    results.write_text(
        json.dumps(
            {
                "model": named["model"],
                "labeller_ms_per_image_one_thread": float(named["labeller"]),
                "label_batch_size": int(named["batch"]),
                "cold_start_s": float(named["cold"]),
                "peak_rss_mb": 300.0,  # not in the tables
                "submit_ms_p50": float(named["submit"]),
            }
        )
    )
    plan = capacity.plan_for(1_000_000, results)
    assert between == capacity.report(plan, "docs/performance.json").strip()
