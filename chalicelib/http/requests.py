"""Requests parsed into typed values: media types, bodies, JSON members, query
parameters. Anything malformed is an InvalidRequest (400) or UnsupportedMediaType (415)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import imaging
from chalicelib.domain.errors import InvalidRequest, UnsupportedMediaType
from chalicelib.domain.jsontext import loads_json
from chalicelib.domain.record_json import DEFAULT_TOP_K, LabelView

IMAGE_MEDIA_TYPES = [
    "image/jpeg",
    "image/jpg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/x-ms-bmp",
    "image/tiff",
    "image/heic",
    "image/avif",
    "application/octet-stream",
]


# Chalice's own error bodies ({"Code", "Message"}) and the codes we answer them with.
def media_type_of(headers: Any) -> str:
    raw = headers.get("content-type") or "application/json"
    return str(raw).split(";")[0].strip().lower()


def is_image_upload(media_type: str) -> bool:
    return imaging.is_image_media_type(media_type)


def raw_body(request: Any) -> bytes:
    body = request.raw_body
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body or b"")


def json_object(raw_body: bytes) -> dict[str, Any]:
    if not raw_body:
        raise InvalidRequest('the body is empty; send {"url": "https://..."} or an image')
    try:
        body = loads_json(raw_body)
    except ValueError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def require_media_type(media_type: str) -> None:
    if media_type != "application/json" and not is_image_upload(media_type):
        raise UnsupportedMediaType(
            f"send application/json with a `url`, or an image body (image/*), not {media_type}"
        )


def query_text(query: Mapping[str, Any] | None, name: str) -> str | None:
    """An optional query parameter (API Gateway and chalice local pass them as text)."""
    value = (query or {}).get(name)
    return None if value is None else str(value)


def required_query_parameter(query: Mapping[str, Any] | None, name: str) -> str:
    value = (query or {}).get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"the query parameter `{name}` is required")
    return value


def label_view(query: Mapping[str, Any] | None, stored_labels: int) -> LabelView:
    """The `top_k` (1..stored_labels, default 5) and `min_score` (0..1, default 0) asked for."""
    query = query or {}
    top_k = _bounded(query.get("top_k"), int, 1, stored_labels, min(DEFAULT_TOP_K, stored_labels))
    min_score = _bounded(query.get("min_score"), float, 0.0, 1.0, 0.0)
    return LabelView(top_k=int(top_k), min_score=float(min_score))


def _bounded(raw: Any, kind: type, low: float, high: float, default: float) -> float:
    if raw is None:
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{raw!r} is not a {kind.__name__}") from None
    if not low <= value <= high or value != value:  # value != value: NaN
        raise InvalidRequest(f"{raw!r} is outside {low:g}..{high:g}")
    return float(value)


@dataclass(frozen=True)
class UrlSubmit:
    """What a JSON submit asks for: `url` and an optional `callback_url`."""

    url: str
    callback_url: str | None


@dataclass(frozen=True)
class BatchSubmit:
    """What a batch submit asks for: `urls` and an optional `callback_url`."""

    urls: list[str]
    callback_url: str | None


def url_submit(raw_body: bytes) -> UrlSubmit:
    body = _json_with(raw_body, "url")
    return UrlSubmit(url=_text(body["url"], "url"), callback_url=_callback_url(body))


def batch_submit(raw_body: bytes) -> BatchSubmit:
    body = _json_with(raw_body, "urls")
    urls = body["urls"]
    if not isinstance(urls, list):
        raise InvalidRequest("`urls` must be a list of URLs")
    if not all(isinstance(url, str) for url in urls):
        raise InvalidRequest("every member of `urls` must be a string")
    return BatchSubmit(urls=urls, callback_url=_callback_url(body))


def _json_with(raw_body: bytes, member: str) -> dict[str, Any]:
    body = json_object(raw_body)
    if member not in body:
        raise InvalidRequest(f"the JSON body has no `{member}`")
    return body


def _callback_url(body: Mapping[str, Any]) -> str | None:
    value = body.get("callback_url")
    return None if value is None else _text(value, "callback_url")


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"`{name}` must be a non-empty string")
    return value


def upload_content_type(raw_body: bytes) -> str | None:
    """The optional `content_type` of POST /uploads (an empty body is fine)."""
    if not raw_body.strip():
        return None
    value = json_object(raw_body).get("content_type")
    if value is not None and not isinstance(value, str):
        raise InvalidRequest("`content_type` must be image/* or application/octet-stream")
    return value


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class SearchPage:
    limit: int
    next_token: str | None


def search_page(query: Mapping[str, Any] | None) -> SearchPage:
    query = query or {}
    limit = _bounded(query.get("limit"), int, 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
    token = query.get("next_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise InvalidRequest("`next_token` must be a token from a previous page")
    return SearchPage(limit=int(limit), next_token=token)


def path_text(segment: str) -> str:
    """A path parameter as text: API Gateway hands them over still percent-encoded."""
    return urllib.parse.unquote(segment)
