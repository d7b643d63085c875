"""The JSON log lines: real service operations and real Chalice handlers, read off stdout."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from chalice.app import Chalice
from chalice.test import Client

from chalicelib import logs
from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteLabelTable
from chalicelib.config import Limits
from chalicelib.domain.errors import FetchFailed, LabellerUnavailable
from chalicelib.domain.models import LabelOutcome
from chalicelib.http import responses
from chalicelib.labelling import LabellingRetryNeeded
from chalicelib.ports import Labeller
from chalicelib.use_cases import UseCases, wire
from tests.support import TENANT, photo_png

ROOT = Path(__file__).resolve().parents[2]
LogLine = dict[str, Any]


class NoNetwork:
    """Fetcher port for tests that only upload."""

    def check_url(self, url: str) -> None:
        pass

    def fetch(self, url: str) -> bytes:
        raise FetchFailed("no network in these tests")


class DownLabeller:
    """A model endpoint that never answers."""

    model_id = "down/test"

    def label(self, images: Iterable[bytes], top_k: int) -> list[LabelOutcome]:
        raise LabellerUnavailable("endpoint unreachable")


def make_service(store: FolderImageStore, table: SqliteLabelTable, labeller: Labeller) -> UseCases:
    return wire(store, table, labeller, NoNetwork(), Limits(), max_attempts=3)


@pytest.fixture
def service(
    folder_store: FolderImageStore, sqlite_table: SqliteLabelTable, tiny_labeller: OnnxLabeller
) -> UseCases:
    """On the tiny stand-in graph: these lines do not depend on what the model answers."""
    return make_service(folder_store, sqlite_table, tiny_labeller)


@pytest.fixture(autouse=True)
def json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging()
    capsys.readouterr()  # only what the test itself writes


def logged(capsys: pytest.CaptureFixture[str]) -> list[LogLine]:
    """Every line on stdout, each parsed as one JSON object (json.loads fails otherwise)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def the_line(lines: list[LogLine], message: str) -> LogLine:
    matching = [line for line in lines if line["message"] == message]
    assert len(matching) == 1, f"{message!r} in {lines}"
    return matching[0]


def test_an_accepted_image_is_one_info_line_carrying_its_id(
    service: UseCases, capsys: pytest.CaptureFixture[str]
) -> None:
    data = photo_png("coffee")
    record = service.submission.submit_upload(TENANT, data).record

    line = the_line(logged(capsys), "image accepted")
    assert line["level"] == "INFO"
    assert line["service"] == "imagelabeller"
    assert line["name"] == "chalicelib.intake"
    assert line["image_id"] == record.image_id
    assert line["status"] == "NOT_CLASSIFIED"
    assert (line["format"], line["size_bytes"], line["width"], line["height"]) == (
        "PNG",
        len(data),
        600,
        400,
    )
    assert line["source"] == "upload"
    assert line["timestamp"].endswith("+00:00")


def test_a_labelled_batch_logs_each_image_and_one_line_with_its_counts(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    onnx_labeller: OnnxLabeller,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = make_service(folder_store, sqlite_table, onnx_labeller)
    good = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    bad = service.submission.submit_upload(TENANT, photo_png("chelsea")).record
    folder_store.delete(bad.image_id)
    capsys.readouterr()

    service.labelling.label_images([good.image_id, bad.image_id, good.image_id])

    lines = logged(capsys)
    classified = the_line(lines, "image classified")
    assert (classified["level"], classified["image_id"]) == ("INFO", good.image_id)
    assert (classified["status"], classified["label"]) == ("CLASSIFIED", "espresso")
    assert classified["model"] == "efficientnet-lite0/onnx"
    failed = the_line(lines, "image failed")
    assert (failed["level"], failed["image_id"]) == ("WARNING", bad.image_id)
    assert failed["status"] == "FAILED"
    assert failed["error"] == "the stored image is missing"
    batch = the_line(lines, "labelled a batch")
    assert batch["level"] == "INFO"
    assert {key: batch[key] for key in ("batch_size", "classified", "failed", "retry")} == {
        "batch_size": 2,
        "classified": 1,
        "failed": 1,
        "retry": 0,
    }
    assert isinstance(batch["duration_ms"], float) and batch["duration_ms"] >= 0


def test_a_model_outage_logs_the_waiting_images_and_the_retry_count(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = make_service(folder_store, sqlite_table, DownLabeller())
    record = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    capsys.readouterr()

    with pytest.raises(LabellingRetryNeeded):
        service.labelling.label_images([record.image_id])

    lines = logged(capsys)
    outage = the_line(lines, "the model is unavailable")
    assert outage["level"] == "WARNING"
    assert outage["image_ids"] == [record.image_id]
    assert outage["error"] == "endpoint unreachable"
    assert the_line(lines, "labelled a batch")["retry"] == 1


def test_deleting_an_image_logs_its_id(
    service: UseCases, capsys: pytest.CaptureFixture[str]
) -> None:
    record = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    service.records.delete(TENANT, record.image_id)

    assert the_line(logged(capsys), "image deleted")["image_id"] == record.image_id


def test_configuring_twice_still_writes_each_line_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = logs.configure_logging()
    assert logs.configure_logging() is first

    logging.getLogger("chalicelib.somewhere").info("once", extra={"image_id": "x"})

    assert [line["message"] for line in logged(capsys)] == ["once"]
    assert logging.getLogger("chalicelib").handlers.count(first.registered_handler) == 1


def chalice_app_with_a_failing_route() -> Chalice:
    app = Chalice(app_name="logs-test", configure_logs=False)
    app.register_middleware(logs.tag_request, "all")

    @app.route("/images/{image_id}", methods=["GET"])
    @responses.answers_errors_as_json
    def get_image(image_id: str) -> dict[str, str]:
        raise RuntimeError("the disk caught fire")

    @app.lambda_function(name="label")
    def label(event: dict[str, Any], context: Any) -> None:
        logging.getLogger("chalicelib.test").info("labelling", extra={"image_id": event["id"]})

    return app


def test_an_unexpected_error_logs_an_error_line_with_the_route_and_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    image_id = str(uuid.uuid4())
    with Client(chalice_app_with_a_failing_route(), "local", str(ROOT)) as client:
        response = client.http.get(f"/images/{image_id}")
        invoked = client.lambda_.invoke("label", {"id": image_id})
    logging.getLogger("chalicelib.test").info("after the requests")

    assert response.status_code == 500
    assert invoked.payload is None
    lines = logged(capsys)
    error = the_line(lines, "unexpected error")
    assert error["level"] == "ERROR"
    assert error["route"] == "GET /images/{image_id}"
    assert error["handler"] == "get_image"
    assert error["image_id"] == image_id
    assert error["request_id"]
    assert error["exception_name"] == "RuntimeError"
    assert "the disk caught fire" in error["exception"]
    event_line = the_line(lines, "labelling")
    assert event_line["image_id"] == image_id
    assert event_line["request_id"] not in ("", error["request_id"])
    assert "route" not in event_line
    assert not {"request_id", "route"} & set(the_line(lines, "after the requests"))


@pytest.mark.parametrize(
    ("level", "written"),
    [
        (None, ["info", "warning"]),
        ("WARNING", ["warning"]),
        ("DEBUG", ["debug", "info", "warning"]),
    ],
)
def test_the_level_comes_from_powertools_log_level(level: str | None, written: list[str]) -> None:
    script = (
        "import logging\n"
        "from chalicelib import logs\n"
        "logs.configure_logging()\n"
        "log = logging.getLogger('chalicelib.levels')\n"
        "log.debug('debug'); log.info('info'); log.warning('warning')\n"
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("POWERTOOLS_LOG_LEVEL", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL")
    }
    if level is not None:
        env["POWERTOOLS_LOG_LEVEL"] = level
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["message"] for line in result.stdout.splitlines()] == written
