"""The API client's edges, against a loopback server standing in for the API: the API key
it sends (and never prints), 401 and 429 answers, error bodies that are not ours, a record
that never finishes, and how the CLI prints records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.api_keys import format_key
from imagelabeller_cli.api_client import (
    ApiClient,
    ApiError,
    KeyRefused,
    RateLimited,
    WaitTimedOut,
    retry_after_seconds,
    wait_until_finished,
)
from imagelabeller_cli.main import main
from tests.support import LoopbackServer, PostReceiver, Reply, loopback_server

PENDING = {"image_id": "pending-1", "status": "NOT_CLASSIFIED", "labels": []}
# Keys of the shape `imagelabeller keys create` prints (the loopback API takes any).
KEY = format_key("0123456789abcdef", "s3cr3t-" + "k" * 40)
OTHER_KEY = format_key("fedcba9876543210", "other-" + "q" * 40)
MAKE_ONE = "make one with `imagelabeller keys create --tenant NAME`"
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


@pytest.fixture
def recording_api() -> Iterator[PostReceiver]:
    """Answers every request with the PENDING record, and keeps its headers."""
    with PostReceiver() as receiver:
        receiver.answer_body = json.dumps(PENDING).encode()
        receiver.headers = {"Content-Type": "application/json"}
        yield receiver


def refusal(status: int, code: str, message: str, **headers: str) -> Reply:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return Reply(status, body, {"Content-Type": "application/json", **headers})


@pytest.fixture
def guarded_api() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        server.routes["/images/refused"] = refusal(
            401, "unauthorized", "this API key is not valid", **{"WWW-Authenticate": "Bearer"}
        )
        server.routes["/images/busy"] = refusal(
            429, "too_many_requests", "over this key's requests a minute", **{"Retry-After": "7"}
        )
        server.routes["/images/echo"] = refusal(401, "unauthorized", f"bad key {KEY}")
        yield server


def test_every_call_sends_the_key_as_a_bearer_header_and_nowhere_else(
    recording_api: PostReceiver,
) -> None:
    client = ApiClient(recording_api.url(""), api_key=KEY)

    client.submit_url("https://example.com/photo.jpg")
    client.submit_bytes(b"image bytes", "image/png")
    client.record("pending-1")

    assert [(request.method, request.path) for request in recording_api.requests] == [
        ("POST", "/images"),
        ("POST", "/images"),
        ("GET", "/images/pending-1"),
    ]
    for request in recording_api.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert KEY not in request.path
        assert KEY.encode() not in request.body
    assert recording_api.requests[1].headers["content-type"] == "image/png"
    assert KEY not in repr(client)


def test_without_a_key_no_authorization_header_is_sent(recording_api: PostReceiver) -> None:
    ApiClient(recording_api.url("")).record("pending-1")

    assert "authorization" not in recording_api.requests[0].headers


@pytest.mark.parametrize(
    ("argv", "environ_key", "sent"),
    [
        (["--api-key", KEY], OTHER_KEY, KEY),
        ([], OTHER_KEY, OTHER_KEY),
        (["--api-key", f"  {KEY}\n"], None, KEY),
        (["--api-key", ""], KEY, KEY),
    ],
    ids=["flag-wins", "environment", "flag-trimmed", "blank-flag-is-none"],
)
def test_get_sends_the_key_of_the_flag_else_of_the_environment(
    recording_api: PostReceiver,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    environ_key: str | None,
    sent: str,
) -> None:
    environ = {"IMAGELABELLER_API": recording_api.url("")}
    if environ_key is not None:
        environ["IMAGELABELLER_API_KEY"] = environ_key

    status = main(["get", "pending-1", *argv], environ=environ)

    assert status == 0
    assert recording_api.requests[0].headers["authorization"] == f"Bearer {sent}"
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err


def test_submit_sends_the_key_from_the_environment(
    recording_api: PostReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"IMAGELABELLER_API": recording_api.url(""), "IMAGELABELLER_API_KEY": KEY}

    status = main(["submit", "https://example.com/photo.jpg"], environ=environ)

    assert status == 0
    assert capsys.readouterr().out == "pending-1\n"
    (request,) = recording_api.requests
    assert (request.method, request.headers["authorization"]) == ("POST", f"Bearer {KEY}")


@pytest.mark.parametrize(
    ("argv", "environ", "source"),
    [
        (["--api-key", KEY], {}, "--api-key"),
        ([], {"IMAGELABELLER_API_KEY": KEY}, "$IMAGELABELLER_API_KEY"),
    ],
    ids=["flag", "environment"],
)
def test_a_refused_key_says_so_where_it_came_from_and_how_to_make_one(
    guarded_api: LoopbackServer,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    environ: dict[str, str],
    source: str,
) -> None:
    status = main(["get", "refused", "--api", guarded_api.url(""), *argv], environ=environ)

    assert status == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: the API refused the key from {source}: this API key is not valid; {MAKE_ONE}\n"
    )


def test_a_401_to_a_keyless_call_says_how_to_give_a_key(
    guarded_api: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["get", "refused", "--api", guarded_api.url("")], environ={})

    assert status == 1
    assert capsys.readouterr().err == (
        "error: the API needs an API key: this API key is not valid; give one with "
        f"--api-key or $IMAGELABELLER_API_KEY ({MAKE_ONE})\n"
    )


def test_a_429_says_when_to_try_again(
    guarded_api: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"IMAGELABELLER_API_KEY": KEY}

    status = main(["get", "busy", "--api", guarded_api.url("")], environ=environ)

    assert status == 1
    assert capsys.readouterr().err == (
        "error: too many requests: over this key's requests a minute; try again in 7 s\n"
    )


def test_401_and_429_are_their_own_errors(guarded_api: LoopbackServer) -> None:
    client = ApiClient(guarded_api.url(""), api_key=KEY)

    with pytest.raises(KeyRefused) as refused:
        client.record("refused")
    with pytest.raises(RateLimited) as limited:
        client.record("busy")

    assert refused.value.code == "unauthorized"
    assert (limited.value.code, limited.value.retry_after) == ("too_many_requests", 7)


def test_an_answer_that_quotes_the_key_does_not_get_it_printed(
    guarded_api: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["get", "echo", "--api", guarded_api.url(""), "--api-key", KEY], environ={})

    assert status == 1
    err = capsys.readouterr().err
    assert KEY not in err
    assert "bad key <the API key>" in err


@pytest.mark.parametrize("bad", ["my password", "ilk_0123_short", "ilk_0123456789abcdef_a\nb"])
def test_something_that_is_not_a_key_is_a_usage_error_that_does_not_print_it(
    recording_api: PostReceiver, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    environ = {"IMAGELABELLER_API": recording_api.url(""), "IMAGELABELLER_API_KEY": bad}

    with pytest.raises(SystemExit) as exited:
        main(["get", "pending-1"], environ=environ)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "the API key from $IMAGELABELLER_API_KEY is not an ImageLabeller API key" in err
    assert bad not in err
    assert recording_api.requests == []


def test_help_does_not_show_the_key_of_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["get", "--help"], environ={"IMAGELABELLER_API_KEY": KEY})

    out = capsys.readouterr().out
    assert "--api-key KEY" in out
    assert KEY not in out


def test_waiting_through_a_429_waits_its_retry_after_then_reads_again() -> None:
    now = [0.0]
    pauses: list[float] = []
    busy = RateLimited("too_many_requests", "slow down", retry_after=3)
    answers: list[dict[str, Any] | RateLimited] = [PENDING, busy, FAILED]

    def read() -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, RateLimited):
            raise answer
        return answer

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    record = wait_until_finished(read, 60, clock=lambda: now[0], sleep=sleep)

    assert record == FAILED
    assert pauses == [0.1, 3.0]


def test_waiting_gives_up_on_a_429_whose_retry_after_is_past_the_deadline() -> None:
    def read() -> dict[str, Any]:
        raise RateLimited("too_many_requests", "daily images used up", retry_after=3600)

    with pytest.raises(RateLimited, match="daily images used up"):
        wait_until_finished(read, 60, clock=lambda: 0.0, sleep=lambda _: None)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7),
        (" 0 ", 0),
        ("Thu, 03 Dec 2026 12:00:30 GMT", 30),
        ("Thu, 03 Dec 2026 11:59:00 GMT", 0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: int | None
) -> None:
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)

    assert retry_after_seconds(header, now=now) == seconds
