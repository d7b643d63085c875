"""`imagelabeller label`: real photos through the real entry point (`python -m`), and the
same command in process where only the outcome matters and a process start is slow."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from imagelabeller_cli.main import main
from tests.cli.support import PhotoFolder, run_cli, run_command, write_photo_folder
from tests.support import EXPECTED_TOP_LABELS

# `path: name 95.1%, name 1.5%, ...`
LABEL_LINE = re.compile(r"^(?P<path>.+?): (?P<labels>[^:]+ \d+\.\d%(, [^:]+ \d+\.\d%)*)$")


@pytest.fixture
def photos(tmp_path: Path) -> PhotoFolder:
    return write_photo_folder(tmp_path / "photos")


def label_names(line: str) -> list[str]:
    match = LABEL_LINE.match(line)
    assert match, f"not a label line: {line!r}"
    return [re.sub(r" \d+\.\d%$", "", part) for part in match["labels"].split(", ")]


def by_path(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in entries}


@pytest.mark.usefixtures("exported_models")
def test_files_get_one_line_each_with_espresso_first_for_the_coffee_photo(
    photos: PhotoFolder,
) -> None:
    result = run_cli("label", str(photos.coffee), str(photos.chelsea))

    assert result.returncode == 0, result.stderr
    coffee_line, chelsea_line = result.stdout.splitlines()
    assert coffee_line.startswith(f"{photos.coffee}: espresso 9")
    assert label_names(coffee_line)[0] == "espresso"
    assert len(label_names(coffee_line)) == 5
    assert chelsea_line.startswith(f"{photos.chelsea}: ")
    assert label_names(chelsea_line)[0] in EXPECTED_TOP_LABELS["chelsea"]


@pytest.mark.usefixtures("exported_models")
def test_json_lists_every_file_of_a_folder_recursively_with_labels_errors_and_skips(
    photos: PhotoFolder,
) -> None:
    result = run_cli("label", str(photos.root), "--json", "--top-k", "3")

    assert result.returncode == 1, result.stderr  # the truncated JPEG failed
    entries = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert [entry["path"] for entry in entries] == [
        str(photos.coffee),
        str(photos.notes),
        str(photos.broken),
        str(photos.chelsea),
        str(photos.motorcycle),
    ]
    for entry in entries:
        assert set(entry) == {"path", "labels", "error", "skipped"}
    found = by_path(entries)
    coffee = found[str(photos.coffee)]
    assert coffee["labels"][0]["name"] == "espresso"
    assert len(coffee["labels"]) == 3
    assert coffee["labels"][0]["score"] > 0.9
    assert coffee["error"] is None and coffee["skipped"] is None
    assert found[str(photos.chelsea)]["labels"][0]["name"] in EXPECTED_TOP_LABELS["chelsea"]
    deep = found[str(photos.motorcycle)]["labels"][0]["name"]
    assert deep in EXPECTED_TOP_LABELS["motorcycle"]
    notes = found[str(photos.notes)]
    assert notes["skipped"].startswith("not an image")
    assert notes["labels"] == [] and notes["error"] is None
    broken = found[str(photos.broken)]
    assert "damaged or truncated" in broken["error"]
    assert broken["labels"] == [] and broken["skipped"] is None


@pytest.mark.usefixtures("exported_models")
def test_a_damaged_file_is_reported_and_the_files_after_it_are_still_labelled(
    photos: PhotoFolder,
) -> None:
    result = run_cli("label", str(photos.broken), str(photos.coffee))

    assert result.returncode == 1
    broken_line, coffee_line = result.stdout.splitlines()
    assert broken_line.startswith(f"{photos.broken}: error: the image data is damaged or truncated")
    assert label_names(coffee_line)[0] == "espresso"


@pytest.mark.usefixtures("exported_models")
def test_a_folder_whose_images_all_label_exits_0_and_reports_the_skipped_files(
    tmp_path: Path, photos: PhotoFolder
) -> None:
    photos.broken.unlink()

    result = run_cli("label", str(photos.root))

    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert f"{photos.notes}: skipped: not an image (accepted formats: JPEG, PNG" in lines[1]
    assert "3 labelled, 0 failed, 1 skipped" in result.stderr
    assert "labelling" not in result.stderr  # no progress bar: stderr is not a terminal


def test_a_missing_path_is_a_usage_error_and_nothing_is_labelled(photos: PhotoFolder) -> None:
    missing = photos.root / "no-such-photo.jpg"

    result = run_cli("label", str(photos.coffee), str(missing))

    assert result.returncode == 2
    assert result.stdout == ""
    assert f"no such file or folder: {missing}" in result.stderr


@pytest.mark.usefixtures("exported_models")
def test_a_forced_progress_bar_goes_to_stderr_and_leaves_the_json_on_stdout_whole(
    photos: PhotoFolder,
) -> None:
    result = run_cli("label", str(photos.root), "--json", "--progress", "--batch-size", "2")

    assert len(json.loads(result.stdout)) == 5
    final_state = result.stderr.replace("\r", "\n").splitlines()
    assert any("labelling: 100%" in line and "5/5" in line for line in final_state), result.stderr


def test_a_named_file_that_is_not_an_image_is_an_error_not_a_skip(
    photos: PhotoFolder, tiny_onnx_model: Path
) -> None:
    result = run_cli(
        "label", str(photos.notes), env={"IMAGELABELLER_MODEL_PATH": str(tiny_onnx_model)}
    )

    assert result.returncode == 1
    assert result.stdout == f"{photos.notes}: error: not an image (accepted formats: JPEG, " + (
        "PNG, GIF, WEBP, BMP, TIFF, AVIF)\n"
    )


def test_a_missing_model_says_to_run_make_setup_and_exits_2(
    photos: PhotoFolder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = tmp_path / "models" / "efficientnet-lite0.onnx"

    status = main(["label", str(photos.coffee)], environ={"IMAGELABELLER_MODEL_PATH": str(absent)})

    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"the model file {absent} is missing: run `make setup`" in captured.err


@pytest.mark.usefixtures("exported_models")
def test_top_k_sets_how_many_labels_each_file_gets(
    photos: PhotoFolder, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["label", str(photos.coffee), "--top-k", "2"], environ={})

    assert status == 0
    assert label_names(capsys.readouterr().out.strip()) == ["espresso", "cup"]


@pytest.mark.parametrize("option", ["--top-k", "--batch-size"])
@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_counts_below_1_are_usage_errors(
    photos: PhotoFolder, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["label", str(photos.coffee), f"{option}={value}"], environ={})

    assert exited.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.usefixtures("exported_models")
def test_the_installed_command_runs_from_any_folder(photos: PhotoFolder, tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "imagelabeller"
    assert command.is_file(), "the `imagelabeller` command is not installed: run `make setup`"

    # Not from the project folder: chalicelib must be found through the install.
    result = run_command([str(command), "label", str(photos.coffee), "--top-k", "1"], tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{photos.coffee}: espresso ")
