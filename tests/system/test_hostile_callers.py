"""Attacks on the real `chalice local`, as a hostile or unlucky caller makes them: a stuck
callback receiver, a client retrying its upload at the same moment, damaged stored files,
URLs carrying secrets, a disk that fills up. Each prints the figure it measures."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any

import pytest
import requests

from tests.support import (
    TricklingServer,
    issue_key,
    jpeg_variant,
    loopback_server,
    photo_jpeg,
    photo_png,
    poll,
)
from tests.system.chalice_local import ChaliceLocal
from tests.system.client import ApiClient

POSTS_AT_ONCE = 20
ROUNDS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaliceLocal]:
    folder = tmp_path_factory.mktemp("hostile")
    local = ChaliceLocal(folder / "data", folder / "chalice.log").start()
    try:
        yield local
    finally:
        local.stop()


def bearer(server: ChaliceLocal) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


def upload_with_callback(server: ChaliceLocal, data: bytes, callback_url: str) -> str:
    response = requests.post(
        f"{server.base_url}/images",
        params={"callback_url": callback_url},
        data=data,
        headers={"Content-Type": "image/jpeg", **bearer(server)},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["image_id"])


def test_a_stuck_callback_receiver_delays_only_its_own_callbacks(server: ChaliceLocal) -> None:
    api = ApiClient(server.base_url, server.api_key)
    slow_head = b"HTTP/1.1 200 OK\r\nX-Slow: "
    with TricklingServer(slow_head, interval=1.0, max_seconds=90) as receiver:
        stuck = [
            upload_with_callback(
                server, jpeg_variant(photo_jpeg("chelsea"), 100 + n), receiver.url()
            )
            for n in range(3)
        ]
        time.sleep(1.0)  # their labels are done and their callbacks hang by now
        started = time.monotonic()
        unrelated = api.submit_upload(jpeg_variant(photo_jpeg("coffee"), 100), "image/jpeg")
        labelled = api.wait_until_finished(unrelated)
        seconds = time.monotonic() - started
        print(f"\nunrelated image labelled in {seconds:.2f} s with 3 callbacks stuck")
        assert labelled["status"] == "CLASSIFIED"
        assert seconds < 5.0

        # The stuck callbacks end FAILED by their own deadline, with their labels intact.
        for image_id in stuck:
            record: dict[str, Any] = poll(
                lambda image_id=image_id: api.record(image_id),  # type: ignore[misc]
                lambda current: current["webhook"]["status"] != "PENDING",
                timeout=40,
            )
            assert record["status"] == "CLASSIFIED"
            assert record["webhook"]["status"] == "FAILED", record["webhook"]
            assert "too long" in record["webhook"]["last_error"]


def post_form(upload: dict[str, Any], data: bytes) -> requests.Response:
    return requests.post(
        upload["upload_url"],
        data=upload["fields"],
        files={"file": ("image.jpg", data, "image/jpeg")},
        timeout=60,
    )


def post_at_once(upload: dict[str, Any], bodies: list[bytes]) -> list[requests.Response]:
    start = Barrier(len(bodies))

    def post(data: bytes) -> requests.Response:
        start.wait()
        return post_form(upload, data)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def new_upload(server: ChaliceLocal) -> dict[str, Any]:
    response = requests.post(
        f"{server.base_url}/uploads",
        json={"content_type": "image/jpeg"},
        headers=bearer(server),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_twenty_posts_of_one_upload_form_at_once_keep_the_image(server: ChaliceLocal) -> None:
    api = ApiClient(server.base_url, server.api_key)
    tally: dict[int, int] = {}
    image_ids = []
    for round_number in range(ROUNDS):
        upload = new_upload(server)
        data = jpeg_variant(photo_jpeg("chelsea"), 1000 + round_number)
        answers = post_at_once(upload, [data] * POSTS_AT_ONCE)
        statuses = sorted(answer.status_code for answer in answers)
        for status in statuses:
            tally[status] = tally.get(status, 0) + 1
        assert statuses == [200] * (POSTS_AT_ONCE - 1) + [202], [a.text for a in answers]
        assert {answer.json()["image_id"] for answer in answers} == {upload["image_id"]}
        image_ids.append(upload["image_id"])
    finished = [api.wait_until_finished(image_id)["status"] for image_id in image_ids]
    outcome = f"answers {tally}; records {Counter(finished)}"
    print(f"\n{ROUNDS} rounds of {POSTS_AT_ONCE} POSTs at once: {outcome}")
    assert finished == ["CLASSIFIED"] * ROUNDS


def test_posts_of_other_bytes_with_a_used_upload_form_get_409(server: ChaliceLocal) -> None:
    upload = new_upload(server)
    bodies = [jpeg_variant(photo_jpeg("coffee"), 2000 + n) for n in range(POSTS_AT_ONCE)]
    answers = post_at_once(upload, bodies)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [202] + [409] * (POSTS_AT_ONCE - 1), [a.text for a in answers]
    assert all(a.json()["error"]["code"] == "conflict" for a in answers if a.status_code == 409)
    winner = next(a for a in answers if a.status_code == 202).json()
    later = post_form(upload, bodies[-1])
    assert later.status_code in (200, 409)
    finished = ApiClient(server.base_url, server.api_key).wait_until_finished(upload["image_id"])
    assert finished["status"] == "CLASSIFIED"
    assert finished["image"]["sha256"] == winner["image"]["sha256"]


def test_a_damaged_stored_image_is_repaired_by_submitting_it_again(server: ChaliceLocal) -> None:
    api = ApiClient(server.base_url, server.api_key)
    data = jpeg_variant(photo_jpeg("coffee"), 3000)
    image_id = api.submit_upload(data, "image/jpeg")
    assert api.wait_until_finished(image_id)["status"] == "CLASSIFIED"
    stored = server.data_dir / "images" / image_id
    stored.write_bytes(data[: len(data) // 3])  # the disk damaged it
    relabel = requests.post(
        f"{server.base_url}/images/{image_id}/relabel", headers=bearer(server), timeout=10
    )
    assert relabel.status_code == 202
    failed = api.wait_until_finished(image_id)
    assert failed["status"] == "FAILED" and "damaged" in failed["error"]

    again = api.submit_upload(data, "image/jpeg")
    assert again == image_id
    assert stored.read_bytes() == data
    assert api.wait_until_finished(image_id)["status"] == "CLASSIFIED"


def test_a_source_url_comes_back_without_its_secrets(server: ChaliceLocal) -> None:
    with loopback_server() as photos:
        url = photos.serve("/cat.png?X-Amz-Signature=s3cr3t", photo_png("chelsea"))
        response = requests.post(
            f"{server.base_url}/images",
            json={"url": url, "callback_url": photos.url("/hook?key=k3y")},
            headers=bearer(server),
            timeout=30,
        )
    assert response.status_code in (200, 202), response.text
    image_id = response.json()["image_id"]
    read = requests.get(f"{server.base_url}/images/{image_id}", headers=bearer(server), timeout=10)
    for text in (response.text, read.text):
        assert "s3cr3t" not in text and "k3y" not in text
    assert read.json()["source_url"] == photos.url("/cat.png")


# --- a full disk -------------------------------------------------------------------------

# The data folder is a tmpfs this small, in a mount namespace of the server's own.
DISK_KIB = 2048
BALLAST_KIB = 1024


def private_tmpfs(folder: Path, seed: Path) -> list[str]:
    """A command prefix that mounts a small tmpfs on `folder`, copies the files of `seed`
    there (the key store), fills part of it with a ballast file, and execs the server
    inside a private mount namespace."""
    script = (
        'mount -t tmpfs -o size="$1"k tmpfs "$0" && cp -R "$3"/. "$0"/ && '
        'dd if=/dev/zero of="$0/ballast" bs=1024 count="$2" status=none && shift 3 && exec "$@"'
    )
    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare is needed for the full-disk test"
    return [
        unshare,
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        str(folder),
        str(DISK_KIB),
        str(BALLAST_KIB),
        str(seed),
    ]


def test_a_full_disk_answers_507_keeps_reads_and_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # The data folder the server sees is a tmpfs of its own: its key is made beside it and
    # copied in before the server starts.
    seed = tmp_path / "seed"
    seed.mkdir()
    key = issue_key(seed, "system-tests")
    server = ChaliceLocal(
        data_dir, tmp_path / "chalice.log", command_prefix=private_tmpfs(data_dir, seed)
    )
    server.start()
    try:
        api = ApiClient(server.base_url, key)
        accepted: list[str] = []
        refused = None
        for n in range(40):
            response = requests.post(
                f"{server.base_url}/images",
                data=jpeg_variant(photo_png_as_jpeg(), 4000 + n),
                headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {key}"},
                timeout=30,
            )
            if response.status_code == 202:
                accepted.append(response.json()["image_id"])
                continue
            refused = response
            break
        assert refused is not None, "the disk never filled"
        print(
            f"\nthe disk filled after {len(accepted)} images: {refused.status_code} {refused.text}"
        )
        assert refused.status_code == 507
        assert refused.json()["error"]["code"] == "insufficient_storage"
        assert requests.get(f"{server.base_url}/health", timeout=10).status_code == 200
        assert accepted and api.record(accepted[0])["image_id"] == accepted[0]

        # Space comes back: every accepted image ends labelled, and new submits work again.
        (server_view(server, data_dir) / "ballast").unlink()
        for image_id in accepted:
            assert api.wait_until_finished(image_id)["status"] == "CLASSIFIED"
        api.submit_upload(jpeg_variant(photo_png_as_jpeg(), 5000), "image/jpeg")
    finally:
        server.stop()


def server_view(server: ChaliceLocal, folder: Path) -> Path:
    """`folder` as the server, in its own mount namespace, sees it."""
    return Path(f"/proc/{server.pid}/root") / str(folder).lstrip("/")


def photo_png_as_jpeg() -> bytes:
    return photo_jpeg("chelsea", quality=95)
