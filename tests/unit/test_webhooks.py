"""Webhook delivery: signed POSTs to a real receiver on loopback, through the guarded fetcher.

The receiver counts as "public" through the fetcher's address policy (as in test_fetch);
the test of a private callback uses the real policy. Time is fake: the sender's clock only
moves when it sleeps, and the sleeps are recorded instead of waited.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.fetch import GuardedFetcher
from chalicelib.adapters.webhooks import (
    EVENT_HEADER,
    FINISHED_EVENT,
    SIGNATURE_HEADER,
    WebhookSender,
    sign,
    verify,
)
from chalicelib.config import Limits
from chalicelib.domain.models import Delivery
from tests.support import PostReceiver, ReceivedRequest, free_port
from tests.unit.test_fetch import LIMITS, fetcher

SECRET = b"receiver-secret"
NOW = 1_800_000_000.0
RECORD = {
    "image_id": "7bb1e1a1-6e06-47f8-a44f-5938329f0fe2",
    "status": "CLASSIFIED",
    "labels": [{"name": "espresso", "score": 0.951062}, {"name": "cup", "score": 0.014992}],
    "model": "efficientnet-lite0/onnx",
    "labelled_at": "2026-11-26T05:11:58.440879+00:00",
    "source_url": None,
}
RECORD_JSON = (
    b'{"image_id":"7bb1e1a1-6e06-47f8-a44f-5938329f0fe2","status":"CLASSIFIED",'
    b'"labels":[{"name":"espresso","score":0.951062},{"name":"cup","score":0.014992}],'
    b'"model":"efficientnet-lite0/onnx","labelled_at":"2026-11-26T05:11:58.440879+00:00",'
    b'"source_url":null}'
)


class FakeTime:
    """A clock that moves only when the sender sleeps; every sleep is recorded."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def receiver() -> Iterator[PostReceiver]:
    with PostReceiver() as server:
        yield server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def sender(
    fake_time: FakeTime, poster: GuardedFetcher | None = None, max_attempts: int = 3
) -> WebhookSender:
    """A sender on a real fetcher that lets it reach the loopback receiver, unless `poster`."""
    return WebhookSender(
        poster or fetcher(),
        SECRET,
        max_attempts=max_attempts,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def signature_of(request: ReceivedRequest) -> str:
    return request.headers[SIGNATURE_HEADER.lower()]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_receiver_gets_the_record_as_compact_json_with_the_webhook_headers(
    receiver: PostReceiver, fake_time: FakeTime
) -> None:
    delivery = sender(fake_time).deliver(receiver.url("/hooks/labels"), RECORD)

    assert delivery == Delivery(
        delivered=True, attempts=1, last_status=200, last_error=None, last_attempt_at=at(NOW)
    )
    [request] = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hooks/labels", RECORD_JSON)
    assert request.headers["content-type"] == "application/json"
    assert request.headers[EVENT_HEADER.lower()] == FINISHED_EVENT == "image.finished"
    assert request.headers["user-agent"].startswith("ImageLabeller-Webhooks/")
    assert signature_of(request).startswith("t=1800000000,v1=")


def test_text_is_sent_as_utf8(receiver: PostReceiver, fake_time: FakeTime) -> None:
    failed = {"status": "FAILED", "error": "the model kept failing…"}
    sender(fake_time).deliver(receiver.url("/hooks/labels"), failed)
    assert (
        receiver.requests[0].body
        == '{"status":"FAILED","error":"the model kept failing…"}'.encode()
    )


def test_signature_verifies_with_the_same_secret_only(
    receiver: PostReceiver, fake_time: FakeTime
) -> None:
    sender(fake_time).deliver(receiver.url("/hooks/labels"), RECORD)
    [request] = receiver.requests
    header, body = signature_of(request), request.body

    assert verify(SECRET, header, body, now=NOW)
    assert not verify(b"another secret", header, body, now=NOW)
    assert not verify(SECRET, header, body.replace(b"espresso", b"espressO"), now=NOW)


def test_signature_is_valid_for_five_minutes_either_way() -> None:
    header = sign(SECRET, int(NOW), RECORD_JSON)
    assert verify(SECRET, header, RECORD_JSON, now=NOW + 300)
    assert verify(SECRET, header, RECORD_JSON, now=NOW - 300)
    assert not verify(SECRET, header, RECORD_JSON, now=NOW + 301)  # a replay
    assert not verify(SECRET, header, RECORD_JSON, now=NOW - 301)
    assert verify(SECRET, header, RECORD_JSON, now=NOW + 3000, tolerance_seconds=3600)


def test_signature_scheme_matches_an_independent_hmac() -> None:
    # From `printf '%s' '1767225600.{"image_id":"42","status":"CLASSIFIED"}'
    #        | openssl dgst -sha256 -hmac receiver-secret`: what a receiver recomputes.
    assert sign(SECRET, 1767225600, b'{"image_id":"42","status":"CLASSIFIED"}') == (
        "t=1767225600,v1=327754e13b18406fe59b5ec5646305164b5024dc6381f30afeddf479dabd4b76"
    )


def test_any_of_several_v1_signatures_may_match() -> None:
    good = sign(SECRET, int(NOW), RECORD_JSON)
    digest = good.partition(",v1=")[2]
    assert verify(SECRET, f"t={int(NOW)},v1={'0' * 64},v1={digest}", RECORD_JSON, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "v1={digest}",
        "t={t}",
        "t={t},v1=",
        "t=,v1={digest}",
        "t=soon,v1={digest}",
        "t=-{t},v1={digest}",
        "t={t}.0,v1={digest}",
        "t=١٨٠٠٠٠٠٠٠٠,v1={digest}",  # Arabic-Indic digits, which int() reads
        "t={t},v1=é{digest}",
        "t={t},v0={digest}",
    ],
)
def test_malformed_signature_headers_do_not_verify(header: str) -> None:
    digest = sign(SECRET, int(NOW), RECORD_JSON).partition(",v1=")[2]
    malformed = header.format(t=int(NOW), digest=digest)
    assert not verify(SECRET, malformed, RECORD_JSON, now=NOW)


def test_server_errors_are_retried_with_doubling_backoff_until_delivered(
    receiver: PostReceiver, fake_time: FakeTime
) -> None:
    receiver.statuses = [500, 500]
    delivery = sender(fake_time).deliver(receiver.url("/hooks/labels"), RECORD)

    assert delivery == Delivery(
        delivered=True, attempts=3, last_status=200, last_error=None, last_attempt_at=at(NOW + 1.5)
    )
    assert fake_time.sleeps == [0.5, 1.0]
    assert [request.body for request in receiver.requests] == [RECORD_JSON] * 3
    # Each attempt is signed afresh with the time it was sent.
    timestamps = [signature_of(request).split(",")[0] for request in receiver.requests]
    assert timestamps == ["t=1800000000", "t=1800000000", "t=1800000001"]


def test_receiver_failing_every_time_is_given_up_after_max_attempts(
    receiver: PostReceiver, fake_time: FakeTime
) -> None:
    receiver.status = 500
    delivery = sender(fake_time).deliver(receiver.url("/hooks/labels"), RECORD)

    assert delivery == Delivery(
        delivered=False,
        attempts=3,
        last_status=500,
        last_error="the receiver answered HTTP 500",
        last_attempt_at=at(NOW + 1.5),
    )
    assert fake_time.sleeps == [0.5, 1.0]
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_timeouts_throttling_and_server_errors_are_retried(
    receiver: PostReceiver, fake_time: FakeTime, status: int
) -> None:
    receiver.status = status
    delivery = sender(fake_time, max_attempts=2).deliver(receiver.url("/hooks/labels"), RECORD)
    assert (delivery.delivered, delivery.attempts, delivery.last_status) == (False, 2, status)
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422, 300, 301, 304])
def test_other_answers_end_the_delivery_at_once(
    receiver: PostReceiver, fake_time: FakeTime, status: int
) -> None:
    receiver.status = status
    delivery = sender(fake_time).deliver(receiver.url("/hooks/labels"), RECORD)

    assert delivery == Delivery(
        delivered=False,
        attempts=1,
        last_status=status,
        last_error=f"the receiver answered HTTP {status}",
        last_attempt_at=at(NOW),
    )
    assert fake_time.sleeps == []
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(receiver: PostReceiver, fake_time: FakeTime, status: int) -> None:
    receiver.status = status
    delivery = sender(fake_time).deliver(receiver.url("/hooks/labels"), RECORD)
    assert (delivery.delivered, delivery.attempts, delivery.last_status) == (True, 1, status)


def test_redirect_is_not_followed(receiver: PostReceiver, fake_time: FakeTime) -> None:
    receiver.status = 302
    receiver.headers = {"Location": receiver.url("/elsewhere")}
    delivery = sender(fake_time).deliver(receiver.url("/hooks/labels"), RECORD)

    assert (delivery.delivered, delivery.attempts, delivery.last_status) == (False, 1, 302)
    assert [(request.method, request.path) for request in receiver.requests] == [
        ("POST", "/hooks/labels")
    ]


def test_callback_to_a_private_address_is_refused_without_a_request(
    receiver: PostReceiver, fake_time: FakeTime
) -> None:
    real_policy = GuardedFetcher(LIMITS)
    delivery = sender(fake_time, real_policy).deliver(receiver.url("/hooks/labels"), RECORD)

    assert (delivery.delivered, delivery.attempts, delivery.last_status) == (False, 1, None)
    assert delivery.last_error is not None
    assert "non-public address" in delivery.last_error
    assert "127.0.0.1" not in delivery.last_error  # the record never names the address
    assert receiver.requests == []
    assert fake_time.sleeps == []


def test_slow_receiver_is_retried_then_given_up(
    receiver: PostReceiver, fake_time: FakeTime
) -> None:
    receiver.delay_seconds = 10.0
    short = fetcher(Limits(fetch_total_timeout=0.3, fetch_connect_timeout=0.3))
    delivery = sender(fake_time, short, max_attempts=2).deliver(receiver.url("/hooks"), RECORD)

    assert (delivery.delivered, delivery.attempts, delivery.last_status) == (False, 2, None)
    assert delivery.last_error is not None
    assert "timed out" in delivery.last_error
    assert len(receiver.requests) == 2
    assert fake_time.sleeps == [0.5]


def test_unreachable_receiver_is_retried_then_given_up(fake_time: FakeTime) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks"
    delivery = sender(fake_time).deliver(url, RECORD)

    assert (delivery.delivered, delivery.attempts, delivery.last_status) == (False, 3, None)
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("could not POST to the URL")
    assert fake_time.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("payload", [{"at": datetime(2026, 1, 1, tzinfo=UTC)}, {"x": math.nan}])
def test_a_payload_that_is_not_json_is_a_programming_error(
    receiver: PostReceiver, fake_time: FakeTime, payload: dict[str, Any]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        sender(fake_time).deliver(receiver.url("/hooks"), payload)
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("secret", "max_attempts", "backoff"), [(b"", 3, 0.5), (SECRET, 0, 0.5), (SECRET, 3, -1.0)]
)
def test_sender_settings_are_checked(secret: bytes, max_attempts: int, backoff: float) -> None:
    with pytest.raises(ValueError):
        WebhookSender(fetcher(), secret, max_attempts=max_attempts, first_backoff_seconds=backoff)
