"""The API client's edges, against a loopback server standing in for the API: error bodies
that are not ours, a record that never finishes, and how the CLI prints records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from imagelabeller_cli.api_client import ApiClient, ApiError, WaitTimedOut, wait_until_finished
from imagelabeller_cli.main import main
from tests.support import LoopbackServer, Reply, loopback_server

PENDING = {"image_id": "pending-1", "status": "NOT_CLASSIFIED", "labels": []}
FAILED = {
    "image_id": "failed-1",
    "status": "FAILED",
    "labels": [],
    "error": "the stored image could not be decoded",
}


def json_reply(body: object, status: int = 200) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def fake_api() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        server.routes["/images/pending-1"] = json_reply(PENDING)
        server.routes["/images/failed-1"] = json_reply(FAILED)
        server.routes["/images/gateway"] = Reply(502, b"<html>Bad Gateway</html>")
        server.routes["/images/no-route"] = json_reply(
            {"message": "Missing Authentication Token"}, status=403
        )
        server.routes["/images/not-an-object"] = json_reply([1, 2])
        yield server


def test_a_record_still_not_classified_at_the_deadline_times_out(
    fake_api: LoopbackServer,
) -> None:
    client = ApiClient(fake_api.url(""))

    expected = "pending-1 is still NOT_CLASSIFIED after 0.5 s"

    with pytest.raises(WaitTimedOut, match=re.escape(expected)):
        wait_until_finished(lambda: client.record("pending-1"), timeout=0.5)

    assert 3 <= fake_api.requests.count("/images/pending-1") <= 6  # polled, backing off


def test_waiting_backs_off_to_one_read_a_second_and_stops_at_a_finished_status() -> None:
    now = [0.0]
    pauses: list[float] = []
    answers = iter([PENDING] * 6 + [FAILED])

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    record = wait_until_finished(lambda: next(answers), 60, clock=lambda: now[0], sleep=sleep)

    assert record == FAILED
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


@pytest.mark.parametrize(
    ("image_id", "code", "message"),
    [
        ("gateway", "http_502", "<html>Bad Gateway</html>"),
        ("no-route", "http_403", "Missing Authentication Token"),
        ("unknown", "http_404", "not found"),
    ],
)
def test_error_bodies_that_are_not_the_apis_still_give_a_code_and_message(
    fake_api: LoopbackServer, image_id: str, code: str, message: str
) -> None:
    with pytest.raises(ApiError) as raised:
        ApiClient(fake_api.url("")).record(image_id)

    assert (raised.value.code, raised.value.message) == (code, message)


def test_a_success_whose_body_is_not_a_json_object_is_an_error(fake_api: LoopbackServer) -> None:
    with pytest.raises(ApiError, match="not a JSON object") as raised:
        ApiClient(fake_api.url("")).record("not-an-object")

    assert raised.value.code == "bad_response"


def test_ids_are_sent_as_one_path_segment(fake_api: LoopbackServer) -> None:
    with pytest.raises(ApiError):
        ApiClient(fake_api.url("/")).record("../submit-image?url=x")

    assert fake_api.requests == ["/images/..%2Fsubmit-image%3Furl%3Dx"]


@pytest.mark.parametrize(
    ("image_id", "line"),
    [
        ("pending-1", "pending-1: NOT_CLASSIFIED\n"),
        ("failed-1", "failed-1: FAILED: the stored image could not be decoded\n"),
    ],
)
def test_get_prints_the_status_and_why_an_image_failed(
    fake_api: LoopbackServer, capsys: pytest.CaptureFixture[str], image_id: str, line: str
) -> None:
    status = main(["get", image_id], environ={"IMAGELABELLER_API": fake_api.url("")})

    assert status == 0
    assert capsys.readouterr().out == line


def test_the_api_option_wins_over_the_environment(
    fake_api: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"IMAGELABELLER_API": "http://127.0.0.1:9"}

    status = main(["get", "pending-1", "--api", fake_api.url(""), "--json"], environ=environ)

    assert status == 0
    assert json.loads(capsys.readouterr().out) == PENDING
