"""A client of a running ImageLabeller API: submit a URL or bytes, read a record, wait."""

from __future__ import annotations

import time
from collections.abc import Callable
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


class ApiUnreachable(Exception):
    """No answer from the API at all (nothing listening, a network error, a time-out)."""


class WaitTimedOut(Exception):
    """The image was still not labelled at the deadline."""


class ApiClient:
    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()

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
        try:
            response = self._session.request(method, url, timeout=timeout, **options)
        except requests.Timeout:
            raise ApiUnreachable(f"no answer from {url} within {timeout:g} s") from None
        except requests.ConnectionError:
            raise ApiUnreachable(
                f"cannot connect to the API at {self.base_url}: is it running? "
                "(choose another with --api or $IMAGELABELLER_API)"
            ) from None
        except requests.RequestException as exc:
            raise ApiUnreachable(f"{method} {url} failed: {exc}") from None
        if not response.ok:
            raise api_error(response)
        body = _json_object(response)
        if body is None:
            raise ApiError(
                "bad_response",
                f"{method} {url} answered {response.status_code} "
                "with a body that is not a JSON object",
            )
        return body


def api_error(response: requests.Response) -> ApiError:
    """The API's `{"error": {"code", "message"}}`, or the best we can say about another body
    (API Gateway's `{"message": ...}`, a proxy's HTML page)."""
    body = _json_object(response) or {}
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return ApiError(error["code"], str(error.get("message", "")))
    message = body.get("message") if isinstance(body.get("message"), str) else None
    reason = message or response.text.strip()[:200] or response.reason or "no details"
    return ApiError(f"http_{response.status_code}", str(reason))


def wait_until_finished(
    read: Callable[[], dict[str, Any]],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Read the record until it is CLASSIFIED or FAILED; WaitTimedOut after `timeout` s.

    Polls often at first (labelling takes well under a second locally), then backs off."""
    deadline = clock() + timeout
    interval = FIRST_POLL_SECONDS
    while True:
        record = read()
        if record.get("status") in FINISHED_STATUSES:
            return record
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimedOut(
                f"{record.get('image_id')} is still {record.get('status')} after {timeout:g} s"
            )
        sleep(min(interval, remaining))
        interval = min(interval * 2, LONGEST_POLL_SECONDS)


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
