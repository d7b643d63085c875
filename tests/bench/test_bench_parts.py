"""The benchmark's own parts: its photos, its statistics and its report."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from chalicelib.domain import imaging
from tools.bench import report
from tools.bench.labeller import BATCH_SIZES
from tools.bench.local_server import CLIENT_COUNTS
from tools.bench.photos import LONG_SIDES, base_photos, mixed_photos, small_jpeg
from tools.bench.timing import median_of_runs, percentile


def test_mixed_photos_are_unique_decodable_and_of_every_size() -> None:
    photos = mixed_photos(2 * len(base_photos()))
    assert len({photo.data for photo in photos}) == len(photos)
    for photo in photos[: len(base_photos())]:
        with Image.open(io.BytesIO(photo.data)) as image:
            image.load()
            assert (image.format, image.size) == (photo.format, (photo.width, photo.height))
        imaging.inspect_image(photo.data, 50_000_000)
    long_sides = {max(photo.width, photo.height) for photo in photos if photo.format == "JPEG"}
    assert long_sides == set(LONG_SIDES)
    assert {photo.format for photo in photos} == {"JPEG", "PNG"}
    assert not {small_jpeg(n) for n in range(len(photos))} & {photo.data for photo in photos}


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_median_of_runs_takes_each_figure_separately() -> None:
    runs = [{"a": 1.0, "b": 30.0}, {"a": 3.0, "b": 10.0}, {"a": 2.0, "b": 20.0}]
    assert median_of_runs(runs) == {"a": 2.0, "b": 20.0}


def sample_results() -> report.Results:
    results = report.Results(
        machine="2 cores", runs=3, pipeline_images=200, labeller_pool=64, models=["m0", "m2"]
    )
    for model, speed in (("m0", 200.0), ("m2", 80.0)):
        labeller = {}
        for batch in BATCH_SIZES:
            labeller[f"model_b{batch}_images_per_s"] = speed * (1 + batch / 100)
            labeller[f"labeller_b{batch}_images_per_s"] = speed / 2
        labeller["labeller_one_thread_ms_per_image"] = 1000 / speed
        results.labeller[model] = labeller
        results.pipeline[model] = {
            "images_per_s": speed * 0.66,
            "server_peak_rss_mb": 300.0,
            "one_image_ms": 20.0,
            "submit_s": 1.0,
            "total_s": 2.0,
        }
        results.script[model] = {"images_per_s": speed * 0.5, "images": 200.0}
        results.worker[model] = {
            "worker_images_per_s": speed * 0.45,
            "labeller_images_per_s": speed * 0.5,
            "batch_size": 16.0,
        }
        results.cold_start[model] = {
            "import_s": 0.4,
            "first_label_s": 0.3,
            "total_s": 0.7,
            "peak_rss_mb": 150.0,
            "batch_peak_rss_mb": 250.0,
        }
    for clients in CLIENT_COUNTS:
        for route, p50 in (("trivial", 1.0), ("get", 2.0), ("upload", 4.0)):
            results.latency[f"{route}_c{clients}_p50_ms"] = p50 * clients
            results.latency[f"{route}_c{clients}_p99_ms"] = 2 * p50 * clients
    results.auth = {
        "checked_p50_ms": 3.0,
        "checked_p99_ms": 9.0,
        "checked_requests": 1600,
        "unchecked_p50_ms": 2.0,
        "unchecked_p99_ms": 6.0,
        "unchecked_requests": 1600,
        "p50_ratio": 1.5,
        "p99_ratio": 1.5,
    }
    return results


def test_pipeline_ratio_is_against_the_best_model_only_batch() -> None:
    results = sample_results()
    assert results.model_bound("m0") == pytest.approx(200 * 1.32)
    assert results.pipeline_ratio("m0") == pytest.approx(0.66 / 1.32)
    assert results.labeller_ratio("m0") == pytest.approx(0.66 / 0.5)


def test_script_and_worker_ratios_divide_the_figures_of_the_same_results() -> None:
    results = sample_results()
    results.pipeline["m2"]["images_per_s"] = 30.0
    results.script["m2"]["images_per_s"] = 20.0
    results.worker["m2"]["worker_images_per_s"] = 27.0
    results.worker["m2"]["labeller_images_per_s"] = 30.0
    assert results.script_ratio("m2") == pytest.approx(1.5)
    assert results.worker_ratio("m2") == pytest.approx(0.9)
    assert results.ratios("m2") == {
        "pipeline_to_script": pytest.approx(1.5),
        "pipeline_to_model_only": pytest.approx(30.0 / (80 * 1.32)),
        "pipeline_to_labeller": pytest.approx(30.0 / 40.0),
        "worker_to_labeller": pytest.approx(0.9),
    }
    assert results.script_ratio("m0") == pytest.approx(0.66 / 0.5)


def test_markdown_tables_hold_every_figure_and_the_ratios() -> None:
    tables = report.markdown_tables(sample_results())
    assert "| figure | `m0` | `m2` |" in tables
    assert "| pipeline ÷ model-only bound (goal ≥ 0.8) | 0.50 | 0.50 |" in tables
    assert "| straightforward script, the same 200 photos (images/s) | 100.0 | 40.0 |" in tables
    assert "| pipeline ÷ script (goal ≥ 1.0) | 1.32 | 1.32 |" in tables
    assert "| labelling worker alone, 200 photos (images/s) | 90.0 | 36.0 |" in tables
    assert "| worker alone ÷ in-process labeller (goal ≥ 0.9) | 0.90 | 0.90 |" in tables
    assert "| GET /images/{id} | 8 | 16.0 | 32.0 | 2.00 | 2.00 |" in tables
    assert "| POST /images (upload) | 32 | 128.0 | 256.0 | 4.00 | 4.00 |" in tables
    assert "| GET /images/{id}, 8 clients | p50 (ms) | p99 (ms) |" in tables
    assert "| keys checked | 3.00 | 9.00 |" in tables
    assert "| checked ÷ unchecked | 1.50 | 1.50 |" in tables


def test_figures_json_has_what_the_cost_script_reads() -> None:
    figures = report.figures_json(sample_results(), label_batch_size=16)
    assert figures["model"] == "m0"
    assert figures["labeller_ms_per_image_one_thread"] == pytest.approx(5.0)
    assert figures["label_batch_size"] == 16
    assert figures["cold_start_s"] == pytest.approx(0.7)
    assert figures["submit_ms_p50"] == pytest.approx(4.0)
    assert figures["peak_rss_mb"] == pytest.approx(250.0)
    assert figures["pipeline_ratio"]["m0"] == round(0.66 / 1.32, 3)


def test_figures_json_keeps_the_baselines_their_ratios_and_every_run() -> None:
    results = sample_results()
    results.per_run["m0"] = {"script_images_per_s": [99.01234, 100.0, 101.0]}
    figures = report.figures_json(results, label_batch_size=16)
    assert figures["script"]["m2"]["images_per_s"] == pytest.approx(40.0)
    assert figures["worker"]["m0"]["worker_images_per_s"] == pytest.approx(90.0)
    assert figures["ratios"]["m0"]["pipeline_to_script"] == round(0.66 / 0.5, 3)
    assert figures["ratios"]["m2"]["worker_to_labeller"] == pytest.approx(0.9)
    assert figures["per_run"]["m0"]["script_images_per_s"] == [99.012, 100.0, 101.0]


def test_plot_is_written_as_png(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    report.write_plot(sample_results(), path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 600


def test_generated_section_replaces_only_the_marked_text(tmp_path: Path) -> None:
    document = tmp_path / "PERFORMANCE.md"
    document.write_text(f"intro\n{report.START_MARK}\nold\n{report.END_MARK}\nafter\n")
    report.replace_between_marks(document, "new table")
    assert document.read_text() == (
        f"intro\n{report.START_MARK}\nnew table\n{report.END_MARK}\nafter\n"
    )
    document.write_text("no marks")
    with pytest.raises(RuntimeError, match="no"):
        report.replace_between_marks(document, "x")
