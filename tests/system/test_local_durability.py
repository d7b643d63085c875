"""Nothing accepted is lost when the local server stops or is killed (local mode only)."""

from __future__ import annotations

from pathlib import Path

from tests.support import photo_jpeg, photo_png
from tests.system.chalice_local import ChaliceLocal
from tests.system.client import ApiClient


def test_image_accepted_just_before_a_stop_is_labelled_after_the_next_start(
    tmp_path: Path,
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "chalice.log"
    # First process: the API only (no stream worker), so nothing is labelled before the stop.
    first = ChaliceLocal(data_dir, log, local_stream="false").start()
    try:
        api = ApiClient(first.base_url, first.api_key)
        image_id = api.submit_upload(photo_png("coffee"), "image/png")
        assert api.record(image_id)["status"] == "NOT_CLASSIFIED"
    finally:
        first.stop(kill=True)

    second = ChaliceLocal(data_dir, log).start()
    try:
        # The key was made in the data folder: it outlives the process too.
        finished = ApiClient(second.base_url, first.api_key).wait_until_finished(image_id)
    finally:
        second.stop()
    assert finished["status"] == "CLASSIFIED"
    assert finished["labels"][0]["name"] == "espresso"


def test_killed_mid_stream_loses_no_image(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "chalice.log"
    first = ChaliceLocal(data_dir, log).start()
    try:
        api = ApiClient(first.base_url, first.api_key)
        ids = [api.submit_upload(photo_jpeg("coffee", 80 + i), "image/jpeg") for i in range(8)]
    finally:
        first.stop(kill=True)

    second = ChaliceLocal(data_dir, log).start()
    try:
        api = ApiClient(second.base_url, first.api_key)
        statuses = [api.wait_until_finished(image_id)["status"] for image_id in ids]
    finally:
        second.stop()
    assert statuses == ["CLASSIFIED"] * len(ids)
