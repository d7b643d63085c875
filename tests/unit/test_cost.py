"""The cost model (tools/costs/) and its command (scripts/cost.py): the arithmetic of docs/COST.md,
pinned with examples worked by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "scripts"))

import cost  # noqa: E402

from tools.costs.inputs import (  # noqa: E402
    REQUIRED_KEYS,
    CostInputError,
    Measured,
    Workload,
    measured_from,
    stage_memory,
)
from tools.costs.model import (  # noqa: E402
    ONNX,
    REKOGNITION,
    SAGEMAKER,
    Row,
    cost_rows,
    gb_seconds,
    lambda_per_1000,
    notes,
    one_thread_ms,
    sagemaker_full_utilisation_per_image,
    sagemaker_instances_needed,
    sagemaker_month,
    sagemaker_utilisation,
)
from tools.costs.prices import REMEMBERED, US_WEST_2  # noqa: E402
from tools.costs.render import money, render_price_table  # noqa: E402
from tools.costs.requests import (  # noqa: E402
    ItemSizes,
    dynamodb_item_bytes,
    representative_item_sizes,
    requests_per_image,
)

PRICES = US_WEST_2
X86 = 0.0000166667  # dollars per GB-second
SAMPLE = {
    "labeller_ms_per_image_one_thread": 12,
    "label_batch_size": 16,
    "cold_start_s": 1.5,
    "peak_rss_mb": 250,
    "submit_ms_p50": 15,
    "model": "efficientnet-lite0",
}
# Item sizes as the representative record has them: every item fits in one write unit.
SIZES = ItemSizes(
    new_record=402,
    classified_record=780,
    sha256_index_entry=108,
    label_index_entry=145,
    digest_claim=131,
)
WORKLOAD = Workload(label_memory_mb=2048, api_memory_mb=1024, images_per_month=100_000)


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "performance.json"
    path.write_text(json.dumps(SAMPLE))
    return path


def sample_measured() -> Measured:
    return measured_from(SAMPLE, "sample")


def row_named(rows: list[Row], option: str, item_start: str) -> Row:
    matches = [row for row in rows if row.option == option and row.item.startswith(item_start)]
    assert len(matches) == 1, [row.item for row in rows]
    return matches[0]


def test_a_thousand_images_of_100_ms_at_2_gb_are_200_gb_seconds() -> None:
    assert 1000 * gb_seconds(2048, 100) == pytest.approx(200)
    assert PRICES.lambda_gb_second_x86.dollars == X86
    assert lambda_per_1000(PRICES, WORKLOAD, 2048, 100) == pytest.approx(200 * X86)
    assert lambda_per_1000(PRICES, WORKLOAD, 2048, 100) == pytest.approx(0.00333334)


def test_arm64_is_priced_per_gb_second_at_its_own_rate() -> None:
    arm = Workload(architecture="arm64")
    assert lambda_per_1000(PRICES, arm, 2048, 100) == pytest.approx(200 * 0.0000133334)


def test_one_thread_work_slows_below_1769_mb_and_gains_nothing_above() -> None:
    assert one_thread_ms(12, 1769) == pytest.approx(12)
    assert one_thread_ms(12, 1769 / 2) == pytest.approx(24)
    assert one_thread_ms(12, 4096) == pytest.approx(12)
    # Below one vCPU the GB-seconds of the work stay the same: half the memory, twice the time.
    assert gb_seconds(1769 / 2, one_thread_ms(12, 1769 / 2)) == pytest.approx(gb_seconds(1769, 12))


def test_requests_per_image_are_the_ones_the_code_makes() -> None:
    counts = requests_per_image(WORKLOAD, batch_size=16, sizes=SIZES)
    # POST /images and one GET /images/{id}; the labeller gets 2 stream records per image,
    # 16 to an invocation.
    assert counts.api_gateway == 2
    assert counts.lambda_invocations == pytest.approx(1 + 2 / 16 + 1)
    assert (counts.s3_puts, counts.s3_gets) == (1, 1)
    # The insert's transaction: the record's put 2 + the claim on its bytes 2, and the
    # record's Sha256Index entry 1; complete's transaction: update 2 + 10 index puts x 2;
    # each of the two requests' rate 1, and the submit's image in its key's day 1.
    assert counts.dynamodb_write_units == 2 + 2 + 1 + 2 + 20 + 2 + 1
    # Each request's key 1; deduplication's claim GetItem 1 and Sha256Index query 0.5; one
    # consistent GetItem by the labeller and one by the GET.
    assert counts.dynamodb_read_units == pytest.approx(2 + 1 + 0.5 + 1 + 1)


def test_a_record_over_1_kb_takes_two_write_units_twice_in_the_transaction() -> None:
    bigger = ItemSizes(402, 1500, 108, 145, 131)
    counts = requests_per_image(WORKLOAD, batch_size=16, sizes=bigger)
    assert counts.dynamodb_write_units == 2 + 2 + 1 + 2 * 2 + 20 + 2 + 1


def test_without_result_reads_only_the_submit_goes_through_api_gateway() -> None:
    workload = Workload(reads_per_image=0)
    counts = requests_per_image(workload, batch_size=16, sizes=SIZES)
    assert counts.api_gateway == 1
    assert counts.lambda_invocations == pytest.approx(1 + 2 / 16)
    assert counts.dynamodb_read_units == pytest.approx(1 + 1 + 0.5 + 1)


def test_dynamodb_item_sizes_follow_dynamodbs_rules() -> None:
    assert dynamodb_item_bytes({"Id": "abc"}) == 2 + 3
    # Numbers: 1 byte per two significant digits, plus 1.
    assert dynamodb_item_bytes({"n": 123}) == 1 + 3
    assert dynamodb_item_bytes({"n": 0.951062}) == 1 + 4
    assert dynamodb_item_bytes({"n": 1000}) == 1 + 2
    # Maps and lists: 3 bytes, plus 1 per element, plus names and values.
    assert dynamodb_item_bytes({"m": {"a": "xy"}}) == 1 + 3 + (1 + 2 + 1)
    assert dynamodb_item_bytes({"l": ["ab", 1]}) == 1 + 3 + (2 + 1) + (2 + 1)


def test_every_item_the_code_writes_for_an_image_fits_in_one_write_unit() -> None:
    sizes = representative_item_sizes()
    assert sizes.new_record < sizes.classified_record <= 1024
    assert sizes.sha256_index_entry <= 1024
    assert sizes.label_index_entry <= 1024
    assert sizes.digest_claim <= 1024
    counts = requests_per_image(WORKLOAD, 16, sizes)
    assert counts.dynamodb_write_units == 30  # what docs/COST.md counts


def test_the_onnx_total_adds_up_by_hand() -> None:
    rows = cost_rows(PRICES, sample_measured(), WORKLOAD, SIZES)
    log_bytes = 450 + 220 + 380 + 14 + (300 + 300) / 8 + 400 * (1 + 2 / 16 + 1)
    by_hand = (
        1000 * 2.0 * 0.012 * X86  # labelling: 12 ms at 2 GB (no faster above 1,769 MB)
        + 1000 * 2.0 * 0.055 * X86  # waiting on S3 and DynamoDB
        + 2.0 * 1.5 * X86  # one cold start of 1.5 s per 1,000 images
        + 1000 * 1.0 * (0.015 * 1769 / 1024 + 0.060) * X86  # submit at 1 GB
        + 1000 * 1.0 * 0.010 * X86  # one result read
        + 2125 * 0.20 / 1e6  # Lambda requests
        + 2000 * 3.50 / 1e6  # API Gateway
        + 0.005  # 1,000 PUTs
        + 0.0004  # 1,000 GETs
        + 30_000 * 0.625 / 1e6  # write units: 27 for the image, 3 for keys and quotas
        + 5_500 * 0.125 / 1e6  # read units: 2.5 for the image, 3 for keys and the claim
        + 1000 * log_bytes / 1024**3 * 0.50  # log ingestion
    )
    onnx_total = row_named(rows, ONNX, "total")
    assert onnx_total.total
    assert onnx_total.per_1000 == pytest.approx(by_hand)
    assert onnx_total.per_month == pytest.approx(by_hand * 100)
    assert by_hand == pytest.approx(0.0371, abs=0.0001)


def test_the_endpoint_costs_its_hours_whatever_it_labels() -> None:
    assert sagemaker_month(PRICES, 1) == pytest.approx(0.115 * 730)
    # At full utilisation an image takes 150 ms of a $0.115 hour.
    full = sagemaker_full_utilisation_per_image(PRICES, WORKLOAD)
    assert 1000 * full == pytest.approx(0.115 * 150 / 3600)
    rows = cost_rows(PRICES, sample_measured(), WORKLOAD, SIZES)
    at_volume = row_named(rows, SAGEMAKER, "endpoint at 100,000")
    assert at_volume.per_1000 == pytest.approx(83.95 / 100)
    assert at_volume.per_month == pytest.approx(83.95)


def test_a_month_too_busy_for_one_instance_needs_more() -> None:
    busy = Workload(images_per_month=50_000_000)  # 7.5 million endpoint-seconds
    assert sagemaker_instances_needed(busy) == 3
    assert sagemaker_utilisation(busy) == pytest.approx(7.5e6 / (3 * 730 * 3600))


def test_each_total_is_compared_with_rekognitions_price() -> None:
    rows = cost_rows(PRICES, sample_measured(), WORKLOAD, SIZES)
    rekognition = row_named(rows, REKOGNITION, "$1.00")
    assert rekognition.per_1000 == pytest.approx(1.00)
    assert rekognition.ratio == 1.0
    totals = [row for row in rows if row.total]
    assert len(totals) == 4
    for row in totals:
        assert row.ratio == pytest.approx((row.per_1000 or 0) / 1.00)
    onnx_items = [row for row in rows if row.option == ONNX and not row.total]
    summed = sum(row.per_1000 or 0 for row in onnx_items if not row.item.startswith("storage"))
    assert row_named(rows, ONNX, "total").per_1000 == pytest.approx(summed)


def test_the_endpoint_alone_breaks_even_with_rekognition_at_83950_images() -> None:
    lines = notes(PRICES, sample_measured(), WORKLOAD)
    assert any("83,950 images a month" in line for line in lines)


def test_a_labeller_bigger_than_its_function_is_flagged() -> None:
    measured = measured_from({**SAMPLE, "peak_rss_mb": 3000}, "sample")
    assert any(line.startswith("WARNING") for line in notes(PRICES, measured, WORKLOAD))
    assert not any(
        line.startswith("WARNING") for line in notes(PRICES, sample_measured(), WORKLOAD)
    )


@pytest.mark.parametrize("missing", sorted(REQUIRED_KEYS))
def test_a_missing_key_is_named_in_a_clear_error(missing: str) -> None:
    partial = {key: value for key, value in SAMPLE.items() if key != missing}
    with pytest.raises(CostInputError, match=f"'{missing}'.*make bench"):
        measured_from(partial, "docs/performance.json")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("label_batch_size", 16.5),
        ("label_batch_size", True),
        ("label_batch_size", 0),
        ("labeller_ms_per_image_one_thread", "12"),
        ("cold_start_s", -1),
        ("model", ""),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(key: str, value: object) -> None:
    with pytest.raises(CostInputError, match=key):
        measured_from({**SAMPLE, key: value}, "docs/performance.json")


def test_the_command_exits_2_naming_the_missing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "performance.json"
    path.write_text(json.dumps({key: v for key, v in SAMPLE.items() if key != "cold_start_s"}))
    assert cost.main(["--results", str(path)]) == 2
    assert "'cold_start_s'" in capsys.readouterr().err


def test_the_command_exits_2_without_a_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["--results", str(tmp_path / "absent.json")]) == 2
    assert "make bench" in capsys.readouterr().err


def test_the_markdown_table_has_every_row(
    results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["--results", str(results_file), "--markdown"]) == 0
    table = capsys.readouterr().out
    assert "| option | item | $ per 1,000 images | $ a month | vs Rekognition |" in table
    for option in (ONNX, SAGEMAKER, REKOGNITION):
        assert f"| {option} |" in table
    for item in (
        "Lambda, labelling: 12 ms/image",
        "Lambda, submit: 15 ms",
        "Lambda requests: 2.125 per image",
        "API Gateway REST: 2 requests per image",
        "S3: 1 PUT + 1 GET per image",
        "DynamoDB writes: 30 write units per image",
        "DynamoDB reads: 5.5 read units per image",
        "endpoint at 100,000 images/month",
        "endpoint at full utilisation",
        "**total**",
        "**total at full utilisation**",
    ):
        assert item in table
    assert "| **$1.00** | **$100.00** | **1x** |" in table


def test_the_memory_defaults_to_the_stages_labelling_function(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "stages": {
                    "prod-us-west-2": {
                        "lambda_functions": {
                            "api_handler": {"lambda_memory_size": 1536},
                            "label_new_images": {"lambda_memory_size": 3008},
                        }
                    }
                }
            }
        )
    )
    assert stage_memory(config, "prod-us-west-2") == (3008, 1536)
    assert stage_memory(config, "no-such-stage") == (2048, 1024)
    assert stage_memory(tmp_path / "absent.json", "prod-us-west-2") == (2048, 1024)


def test_the_memory_option_overrides_the_stage(
    results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["--results", str(results_file), "--memory-mb", "1024"]) == 0
    assert "12 ms/image on 1 vCPU, 20.7 ms at 1,024 MB" in capsys.readouterr().out


def test_write_doc_replaces_only_the_text_between_the_markers(
    results_file: Path, tmp_path: Path
) -> None:
    doc = tmp_path / "COST.md"
    doc.write_text(
        f"# Cost\n\nbefore\n\n{cost.MARKER_START}\nold table\n{cost.MARKER_END}\n\nafter\n"
    )
    assert cost.main(["--results", str(results_file), "--write-doc", str(doc)]) == 0
    written = doc.read_text()
    assert written.startswith(f"# Cost\n\nbefore\n\n{cost.MARKER_START}\n")
    assert written.endswith(f"\n{cost.MARKER_END}\n\nafter\n")
    assert "old table" not in written
    inside = written.split(cost.MARKER_START)[1].split(cost.MARKER_END)[0]
    assert f"| {ONNX} |" in inside
    assert cost.main(["--results", str(results_file), "--write-doc", str(doc)]) == 0
    assert doc.read_text() == written


def test_write_doc_without_markers_fails_and_leaves_the_doc_alone(
    results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "COST.md"
    doc.write_text("# Cost\n")
    assert cost.main(["--results", str(results_file), "--write-doc", str(doc)]) == 2
    assert cost.MARKER_START in capsys.readouterr().err
    assert doc.read_text() == "# Cost\n"


def test_write_doc_with_the_end_marker_first_fails_and_leaves_the_doc_alone(
    results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "COST.md"
    reversed_markers = f"{cost.MARKER_END}\nold table\n{cost.MARKER_START}\n"
    doc.write_text(reversed_markers)
    assert cost.main(["--results", str(results_file), "--write-doc", str(doc)]) == 2
    assert "in that order" in capsys.readouterr().err
    assert doc.read_text() == reversed_markers


def test_prices_are_held_per_unit_as_the_price_lists_quote_them() -> None:
    assert PRICES.region == "us-west-2"
    assert PRICES.lambda_request.dollars * 1e6 == pytest.approx(0.20)
    assert PRICES.api_gateway_rest_request.dollars * 1e6 == pytest.approx(3.50)
    assert PRICES.s3_put.dollars * 1000 == pytest.approx(0.005)
    assert PRICES.s3_get.dollars * 1000 == pytest.approx(0.0004)
    assert PRICES.dynamodb_write_unit.dollars * 1e6 == pytest.approx(0.625)
    assert PRICES.dynamodb_read_unit.dollars * 1e6 == pytest.approx(0.125)
    assert PRICES.sagemaker_ml_m5_large_hour.dollars == pytest.approx(0.115)
    assert PRICES.rekognition_detect_labels.dollars * 1000 == pytest.approx(1.00)
    for name, price in PRICES.listed():
        assert price.source.startswith("https://") or price.source == REMEMBERED, name


def test_the_doc_shows_the_prices_the_script_uses_and_the_table_markers() -> None:
    doc = (ROOT / "docs" / "COST.md").read_text()
    assert render_price_table(PRICES) in doc
    assert doc.index(cost.MARKER_START) < doc.index(cost.MARKER_END)


def test_money_keeps_three_significant_figures() -> None:
    assert money(0.0004) == "$0.000400"
    assert money(0.0331) == "$0.0331"
    assert money(83.95) == "$83.95"
    assert money(1653.529) == "$1,653.53"
    assert money(None) == "—"
