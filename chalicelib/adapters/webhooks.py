"""Webhook delivery: POST a finished image record to the `callback_url` its submitter gave.

Each delivery is signed the way Stripe signs its webhooks. The header

    ImageLabeller-Signature: t=1767225600,v1=<64 hex digits>

carries the time of sending and the hex HMAC-SHA256, under the shared secret, of
`f"{t}."` followed by the raw request body. A receiver checks it with `verify`, or in any
language: recompute the HMAC over the bytes it received (not a re-serialisation), compare
in constant time, and refuse a timestamp more than five minutes from its own clock, which
stops a captured request from being replayed later. The same record may arrive more than
once (an answer lost on the way back looks like a failure), so receivers should treat
`image_id` + `status` as the delivery's identity.

Answers 2xx mean delivered. 408, 429, 5xx and network failures are tried again, with a
backoff that doubles. Any other answer (3xx included: redirects are never followed) and a
URL that now resolves to a non-public address end the delivery at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.adapters.secrets import FixedKey, SigningKey
from chalicelib.domain.errors import FetchFailed, UrlNotAllowed
from chalicelib.domain.models import Delivery

SIGNATURE_HEADER = "ImageLabeller-Signature"
EVENT_HEADER = "ImageLabeller-Event"
# One event for both ends of labelling: the record's `status` says CLASSIFIED or FAILED.
FINISHED_EVENT = "image.finished"
USER_AGENT = "ImageLabeller-Webhooks/1.0 (+image labelling service)"
DEFAULT_TOLERANCE_SECONDS = 300
RETRIED_STATUSES = frozenset({408, 429})


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (seconds since epoch)."""
    return f"t={timestamp},v1={_digest(secret, str(timestamp), body)}"


def verify(
    secret: bytes,
    header: str,
    body: bytes,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True if `header` signs `body` under `secret` and its timestamp is within
    `tolerance_seconds` of `now`. Malformed headers are False, never an exception.
    Several `v1=` entries are allowed (one matching is enough), as when a secret is rotated.
    """
    timestamp = ""
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if not (timestamp.isascii() and timestamp.isdigit()) or not candidates:
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, body).encode()
    # Compare every candidate, so the time taken does not depend on which one matched.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]
    return any(matches)


def _digest(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class JsonPoster(Protocol):
    """Sends one POST and returns the HTTP status (chalicelib.adapters.fetch.GuardedFetcher).

    Raises UrlNotAllowed for a refused address and FetchFailed when no status arrived.
    """

    def post_json(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...


class WebhookSender:
    """Delivers finished records, signed, with retries. Never raises for delivery problems;
    a key that cannot be read (SecretUnavailable) is raised before anything is sent, so the
    queue hands the message back later instead of recording the callback FAILED."""

    def __init__(
        self,
        poster: JsonPoster,
        secret: bytes | SigningKey,
        max_attempts: int = 3,
        first_backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        if first_backoff_seconds < 0:
            raise ValueError(f"first_backoff_seconds is negative: {first_backoff_seconds}")
        self._poster = poster
        # A key given as bytes stays; a SigningKey is asked at each delivery (rotation).
        self._key = FixedKey(secret) if isinstance(secret, bytes) else secret
        self._max_attempts = max_attempts
        self._first_backoff = first_backoff_seconds
        self._sleep = sleep
        self._clock = clock

    def deliver(self, url: str, payload: Mapping[str, Any]) -> Delivery:
        """POST `payload` (JSON-ready: str, numbers, bools, None, lists, dicts) to `url`."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encoded = body.encode("utf-8")
        secret = self._key.current()
        attempt = 0
        while True:
            attempt += 1
            now = self._clock()
            status, error, retry = self._attempt(url, encoded, secret, int(now))
            last_attempt_at = datetime.fromtimestamp(now, UTC)
            if not retry or attempt == self._max_attempts:
                return Delivery(
                    delivered=error is None,
                    attempts=attempt,
                    last_status=status,
                    last_error=error,
                    last_attempt_at=last_attempt_at,
                )
            self._sleep(self._first_backoff * 2 ** (attempt - 1))

    def _attempt(
        self, url: str, body: bytes, secret: bytes, timestamp: int
    ) -> tuple[int | None, str | None, bool]:
        """(status, error, worth retrying) of one POST; error is None when delivered."""
        headers = {
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            EVENT_HEADER: FINISHED_EVENT,
            "User-Agent": USER_AGENT,
        }
        try:
            status = self._poster.post_json(url, body, headers)
        except UrlNotAllowed as exc:
            return None, f"callback URL refused: {exc.message}", False
        except FetchFailed as exc:
            return None, exc.message, True
        if 200 <= status < 300:
            return status, None, False
        retry = status in RETRIED_STATUSES or 500 <= status < 600
        return status, f"the receiver answered HTTP {status}", retry
