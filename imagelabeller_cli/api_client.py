"""A client of a running ImageLabeller API: submit a URL or bytes, read a record, wait.

Every request carries the API key, if one is given, as `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

# The server fetches a submitted URL before it answers (15 s at most by default).
SUBMIT_TIMEOUT_SECONDS = 30.0
READ_TIMEOUT_SECONDS = 10.0
FIRST_POLL_SECONDS = 0.1
LONGEST_POLL_SECONDS = 1.0
FINISHED_STATUSES = ("CLASSIFIED", "FAILED")


class ApiError(Exception):
    """The API refused the request: its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class KeyRefused(ApiError):
    """401: no key was sent, or the API does not accept the one sent."""


class RateLimited(ApiError):
    """429: over the key's request rate or daily images; `retry_after` seconds to wait
    (None when the answer did not say)."""

    def __init__(self, code: str, message: str, retry_after: int | None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class ApiUnreachable(Exception):
    """No answer from the API at all (nothing listening, a network error, a time-out)."""


class WaitTimedOut(Exception):
    """The image was still not labelled at the deadline."""


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sends_key = bool(api_key)
        self._api_key = api_key or ""
        self._session = session or requests.Session()

    def __repr__(self) -> str:  # never the key
        return f"ApiClient({self.base_url!r}, sends_key={self.sends_key})"

    def submit_url(self, url: str) -> dict[str, Any]:
        return self._call("POST", "/images", json={"url": url}, timeout=SUBMIT_TIMEOUT_SECONDS)

    def submit_bytes(self, data: bytes, content_type: str) -> dict[str, Any]:
        return self._call(
            "POST",
            "/images",
            data=data,
            headers={"Content-Type": content_type},
            timeout=SUBMIT_TIMEOUT_SECONDS,
        )

    def record(self, image_id: str) -> dict[str, Any]:
        return self._call(
            "GET", f"/images/{quote(image_id, safe='')}", timeout=READ_TIMEOUT_SECONDS
        )

    def _call(self, method: str, path: str, timeout: float, **options: Any) -> dict[str, Any]:
        url = self.base_url + path
        headers = dict(options.pop("headers", None) or {})
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            response = self._session.request(
                method, url, timeout=timeout, headers=headers, **options
            )
        except requests.Timeout:
            raise ApiUnreachable(f"no answer from {url} within {timeout:g} s") from None
        except requests.ConnectionError:
            raise ApiUnreachable(
                f"cannot connect to the API at {self.base_url}: is it running? "
                "(choose another with --api or $IMAGELABELLER_API)"
            ) from None
        except requests.RequestException as exc:
            failure = hide_key(f"{method} {url} failed: {exc}", self._api_key)
            raise ApiUnreachable(failure) from None
        if not response.ok:
            raise api_error(response, self._api_key)
        body = _json_object(response)
        if body is None:
            raise ApiError(
                "bad_response",
                f"{method} {url} answered {response.status_code} "
                "with a body that is not a JSON object",
            )
        return body


def hide_key(text: str, api_key: str) -> str:
    """`text` with the key blanked out, should an answer or an exception quote it."""
    return text.replace(api_key, "<the API key>") if api_key else text


def api_error(response: requests.Response, api_key: str = "") -> ApiError:
    """The API's `{"error": {"code", "message"}}`, or the best we can say about another body
    (API Gateway's `{"message": ...}`, a proxy's HTML page); KeyRefused for a 401 and
    RateLimited for a 429, whatever their bodies. The message never quotes `api_key`."""
    body = _json_object(response) or {}
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code, message = error["code"], str(error.get("message", ""))
    else:
        text = body.get("message") if isinstance(body.get("message"), str) else None
        reason = text or response.text.strip()[:200] or response.reason or "no details"
        code, message = f"http_{response.status_code}", str(reason)
    message = hide_key(message, api_key)
    if response.status_code == 401:
        return KeyRefused(code, message)
    if response.status_code == 429:
        return RateLimited(code, message, retry_after_seconds(response.headers.get("Retry-After")))
    return ApiError(code, message)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> int | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date
    (RFC 9110); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, math.ceil((when - (now or datetime.now(UTC))).total_seconds()))


def wait_until_finished(
    read: Callable[[], dict[str, Any]],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Read the record until it is CLASSIFIED or FAILED; WaitTimedOut after `timeout` s.

    Polls often at first (labelling takes well under a second locally), then backs off. A
    429 waits its Retry-After (at least the next interval) and reads again, if that is
    before the deadline; else it is raised."""
    deadline = clock() + timeout
    interval = FIRST_POLL_SECONDS
    while True:
        pause = interval
        try:
            record = read()
        except RateLimited as limited:
            pause = max(float(limited.retry_after or 0), interval)
            if clock() + pause > deadline:
                raise
        else:
            if record.get("status") in FINISHED_STATUSES:
                return record
            remaining = deadline - clock()
            if remaining <= 0:
                raise WaitTimedOut(
                    f"{record.get('image_id')} is still {record.get('status')} after {timeout:g} s"
                )
            pause = min(interval, remaining)
        sleep(pause)
        interval = min(interval * 2, LONGEST_POLL_SECONDS)


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
