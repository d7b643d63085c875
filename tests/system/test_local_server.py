"""Black-box: the real `chalice local` process, real photos over real HTTP, labels by polling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import (
    EXPECTED_TOP_LABELS,
    LoopbackServer,
    photo_jpeg,
    photo_png,
    poll,
)
from tests.system.chalice_local import ChaliceLocal

DEADLINE_SECONDS = 60


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChaliceLocal]:
    process = ChaliceLocal(tmp_path / "data", tmp_path / "chalice.log").start()
    yield process
    process.stop()


def record(base_url: str, image_id: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/images/{image_id}", timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_until_finished(base_url: str, image_id: str) -> dict[str, Any]:
    return poll(  # type: ignore[no-any-return]
        lambda: record(base_url, image_id),
        lambda current: current["status"] != "NOT_CLASSIFIED",
        timeout=DEADLINE_SECONDS,
    )


def submit_url(base_url: str, url: str) -> str:
    response = requests.post(f"{base_url}/images", json={"url": url}, timeout=30)
    assert response.status_code == 202, response.text
    return str(response.json()["image_id"])


def submit_upload(base_url: str, data: bytes, content_type: str) -> str:
    response = requests.post(
        f"{base_url}/images", data=data, headers={"Content-Type": content_type}, timeout=30
    )
    assert response.status_code == 202, response.text
    return str(response.json()["image_id"])


def test_photos_submitted_by_url_and_upload_become_correctly_classified(
    server: ChaliceLocal, photo_server: LoopbackServer
) -> None:
    by_url = submit_url(server.base_url, photo_server.serve("/coffee.png", photo_png("coffee")))
    by_upload = submit_upload(server.base_url, photo_jpeg("chelsea"), "image/jpeg")
    legacy = requests.get(
        f"{server.base_url}/submit-image",
        params={"url": photo_server.serve("/moto.png", photo_png("motorcycle"))},
        timeout=30,
    ).json()["ImageId"]

    expected = {by_url: "coffee", by_upload: "chelsea", legacy: "motorcycle"}
    for image_id, photo in expected.items():
        finished = wait_until_finished(server.base_url, image_id)
        assert finished["status"] == "CLASSIFIED", finished
        assert finished["labels"][0]["name"] in EXPECTED_TOP_LABELS[photo]
        assert finished["model"] == "efficientnet-lite0/onnx"

    label = requests.get(
        f"{server.base_url}/get-image-label", params={"imageId": legacy}, timeout=10
    ).json()["ImageLabel"]
    assert label.split(", ")[0] in EXPECTED_TOP_LABELS["motorcycle"]


def test_bad_input_gets_4xx_json_and_the_server_keeps_serving(
    server: ChaliceLocal, photo_server: LoopbackServer
) -> None:
    base = server.base_url
    truncated = photo_jpeg("coffee")[:20000]
    bad_requests = [
        (
            requests.post(
                f"{base}/images", data="{oops", headers={"Content-Type": "application/json"}
            ),
            400,
        ),
        (requests.post(f"{base}/images", json={}), 400),
        (requests.post(f"{base}/images", json={"url": "ftp://example.com/x.jpg"}), 400),
        (requests.post(f"{base}/images", json={"url": "file:///etc/passwd"}), 400),
        (requests.get(f"{base}/images/00000000-0000-4000-8000-000000000000"), 404),
        (
            requests.post(
                f"{base}/images", data=b"plain text", headers={"Content-Type": "image/png"}
            ),
            415,
        ),
        (
            requests.post(f"{base}/images", data=truncated, headers={"Content-Type": "image/jpeg"}),
            415,
        ),
        (requests.post(f"{base}/images", json={"url": photo_server.url("/missing.png")}), 422),
    ]
    for response, status in bad_requests:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert set(response.json()["error"]) == {"code", "message"}
    image_id = submit_upload(base, photo_png("coffee"), "image/png")
    assert wait_until_finished(base, image_id)["status"] == "CLASSIFIED"


def test_image_accepted_just_before_a_stop_is_labelled_after_the_next_start(
    tmp_path: Path,
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "chalice.log"
    # First process: the API only (no stream worker), so nothing is labelled before the stop.
    first = ChaliceLocal(data_dir, log, local_stream="false").start()
    try:
        image_id = submit_upload(first.base_url, photo_png("coffee"), "image/png")
        assert record(first.base_url, image_id)["status"] == "NOT_CLASSIFIED"
    finally:
        first.stop(kill=True)

    second = ChaliceLocal(data_dir, log).start()
    try:
        finished = wait_until_finished(second.base_url, image_id)
    finally:
        second.stop()
    assert finished["status"] == "CLASSIFIED"
    assert finished["labels"][0]["name"] == "espresso"


def test_killed_mid_stream_loses_no_image(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "chalice.log"
    first = ChaliceLocal(data_dir, log).start()
    try:
        ids = [
            submit_upload(first.base_url, photo_jpeg("coffee", 80 + i), "image/jpeg")
            for i in range(8)
        ]
    finally:
        first.stop(kill=True)

    second = ChaliceLocal(data_dir, log).start()
    try:
        statuses = [wait_until_finished(second.base_url, image_id)["status"] for image_id in ids]
    finally:
        second.stop()
    assert statuses == ["CLASSIFIED"] * len(ids)
