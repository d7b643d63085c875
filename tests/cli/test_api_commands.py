"""`imagelabeller submit` and `get` against the real `chalice local`, as a user runs them,
with an API key made in its data folder (as `imagelabeller keys create` makes one)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.support import run_cli, truncated_jpeg
from tests.support import (
    EXPECTED_TOP_LABELS,
    LoopbackServer,
    free_port,
    issue_key,
    issue_revoked_key,
    loopback_server,
    photo_jpeg,
    photo_png,
    poll,
)
from tests.system.chalice_local import ChaliceLocal

IMAGE_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LABEL = r"[^:,]+ \d+\.\d%"
CLASSIFIED_LINE = re.compile(rf"^(?P<id>{IMAGE_ID}): CLASSIFIED: (?P<labels>{LABEL}(, {LABEL})*)$")
MAKE_ONE = "make one with `imagelabeller keys create --tenant NAME`"


@dataclass(frozen=True)
class Keys:
    good: str
    revoked: str

    @property
    def environment(self) -> dict[str, str]:
        return {"IMAGELABELLER_API_KEY": self.good}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chalice-local")


@pytest.fixture(scope="module")
def keys(folder: Path) -> Keys:
    return Keys(
        good=issue_key(folder / "data", "cli-tests"),
        revoked=issue_revoked_key(folder / "data", "cli-tests"),
    )


@pytest.fixture(scope="module")
def api(folder: Path, keys: Keys) -> Iterator[str]:
    server = ChaliceLocal(folder / "data", folder / "chalice.log").start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def photo_server() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        yield server


def label_names(line: str) -> list[str]:
    """The names in `<id>: CLASSIFIED: espresso 95.1%, cup 1.5%, ...`, best first."""
    match = CLASSIFIED_LINE.match(line)
    assert match, f"not a CLASSIFIED line: {line!r}"
    return [label.rsplit(" ", 1)[0] for label in match["labels"].split(", ")]


def test_an_uploaded_photo_waited_for_prints_its_labels_espresso_first(
    api: str, keys: Keys, tmp_path: Path
) -> None:
    photo = tmp_path / "coffee.png"
    photo.write_bytes(photo_png("coffee"))

    result = run_cli("submit", str(photo), "--api", api, "--wait", env=keys.environment)

    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    names = label_names(line)
    assert names[0] == "espresso"
    assert len(names) == 5


def test_a_url_waited_for_as_json_is_the_classified_record(
    api: str, keys: Keys, photo_server: LoopbackServer
) -> None:
    url = photo_server.serve("/chelsea.png", photo_png("chelsea"))

    result = run_cli("submit", url, "--api", api, "--api-key", keys.good, "--wait", "--json")

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert re.fullmatch(IMAGE_ID, record["image_id"])
    assert record["status"] == "CLASSIFIED"
    assert record["source_url"] == url
    assert record["labels"][0]["name"] in EXPECTED_TOP_LABELS["chelsea"]
    assert record["image"]["format"] == "PNG"
    assert "/chelsea.png" in photo_server.requests


def test_submit_prints_only_the_id_and_get_reads_the_api_from_the_environment(
    api: str, keys: Keys, tmp_path: Path
) -> None:
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(photo_jpeg("chelsea"))
    environment = {"IMAGELABELLER_API": api, **keys.environment}

    submitted = run_cli("submit", str(photo), env=environment)

    assert submitted.returncode == 0, submitted.stderr
    assert re.fullmatch(rf"{IMAGE_ID}\n", submitted.stdout)
    image_id = submitted.stdout.strip()
    read = poll(
        lambda: run_cli("get", image_id, env=environment),
        lambda answer: "CLASSIFIED" in answer.stdout,
        timeout=30,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.startswith(f"{image_id}: CLASSIFIED: ")
    assert label_names(read.stdout.strip())[0] in EXPECTED_TOP_LABELS["chelsea"]

    as_json = run_cli("get", image_id, "--json", env=environment)
    record = json.loads(as_json.stdout)
    assert record["image_id"] == image_id
    assert record["image"]["format"] == "JPEG"  # uploaded as image/jpeg, stored as such


def test_a_file_url_is_refused_with_the_apis_code_and_exit_1(api: str, keys: Keys) -> None:
    result = run_cli("submit", "file:///etc/passwd", "--api", api, "--wait", env=keys.environment)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: url_not_allowed: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"shopping: beans, milk\n", "the body is not an image"),
        (truncated_jpeg(), "the image data is damaged or truncated"),
    ],
    ids=["text", "truncated-jpeg"],
)
def test_an_upload_the_api_refuses_prints_its_error(
    api: str, keys: Keys, tmp_path: Path, data: bytes, message: str
) -> None:
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(data)

    result = run_cli("submit", str(upload), "--api", api, env=keys.environment)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: not_an_image: {message}")


def test_get_of_an_unknown_id_is_not_found_and_exit_1(api: str, keys: Keys) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    result = run_cli("get", unknown, "--api", api, env=keys.environment)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: not_found: ")


def test_an_api_that_is_not_running_is_named(tmp_path: Path) -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"

    result = run_cli("get", "some-id", "--api", nothing_there)

    assert result.returncode == 1
    assert f"cannot connect to the API at {nothing_there}" in result.stderr


def test_submitting_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("submit", str(tmp_path / "missing.jpg"), "--api", "http://127.0.0.1:9")

    assert result.returncode == 2
    assert "is neither a URL nor a file" in result.stderr


def test_without_a_key_the_api_refuses_and_the_cli_says_how_to_give_one(
    api: str, tmp_path: Path
) -> None:
    photo = tmp_path / "coffee.png"
    photo.write_bytes(photo_png("coffee"))

    result = run_cli("submit", str(photo), "--api", api)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: the API needs an API key: ")
    assert result.stderr.endswith(
        f"; give one with --api-key or $IMAGELABELLER_API_KEY ({MAKE_ONE})\n"
    )


def test_a_revoked_key_is_refused_and_never_printed(api: str, keys: Keys) -> None:
    environment = {"IMAGELABELLER_API_KEY": keys.revoked}

    result = run_cli("get", "00000000-0000-0000-0000-000000000000", "--api", api, env=environment)

    assert result.returncode == 1
    assert result.stderr.startswith("error: the API refused the key from $IMAGELABELLER_API_KEY: ")
    assert result.stderr.endswith(f"; {MAKE_ONE}\n")
    assert keys.revoked not in result.stdout + result.stderr
