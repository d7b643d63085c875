"""HTTP shapes: request parsing, record bodies, and the one mapping from errors to HTTP."""

from __future__ import annotations

import functools
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalice.app import Request, Response

from chalicelib.domain.errors import ImageLabellerError, InvalidRequest, UnsupportedMediaType
from chalicelib.domain.jsontext import loads_json
from chalicelib.domain.models import LabelHit, UploadTicket
from chalicelib.domain.record_json import DEFAULT_TOP_K, LabelView, record_body
from chalicelib.service import BatchItem, Submission

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "invalid_request": 400,
    "url_not_allowed": 400,
    "upload_not_allowed": 403,
    "not_found": 404,
    "conflict": 409,
    "image_too_large": 413,
    "not_an_image": 415,
    "unsupported_image_format": 415,
    "unsupported_media_type": 415,
    "fetch_failed": 422,
    "insufficient_storage": 507,
}
# Raw uploads API Gateway must pass through as bytes (it base64-encodes these types).
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
CHALICE_CODES = {
    "BadRequestError": "invalid_request",
    "BadRequest": "invalid_request",
    "MethodNotAllowedError": "method_not_allowed",
    "UnsupportedMediaType": "unsupported_media_type",
    "NotFoundError": "not_found",
    "InternalServerError": "internal_error",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(error: ImageLabellerError) -> Response:
    status = STATUS_BY_CODE.get(error.code, 400)
    return Response(body=error_body(error.code, error.message), status_code=status)


def answers_errors_as_json[View: Callable[..., Any]](view: View) -> View:
    """Turn domain errors into 4xx JSON, and anything unexpected into a logged 500 JSON."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ImageLabellerError as error:
            return error_response(error)
        except Exception:
            # The route and the request id are added by logs.tag_request.
            keys = {"handler": view.__name__, "image_id": kwargs.get("image_id")}
            log.exception("unexpected error", extra=keys)
            return Response(
                body=error_body("internal_error", "an internal error occurred"), status_code=500
            )

    return wrapper  # type: ignore[return-value]


def finish_response(response: Response, request: Request | None = None) -> Response:
    """Every answer leaves here: JSON bodies say so in Content-Type, the errors Chalice
    answers by itself (405, 500, ...) get our error shape, and a Location path gets the
    prefix the caller reached the API under."""
    location = response.headers.get("Location")
    if request is not None and isinstance(location, str) and location.startswith("/"):
        response.headers["Location"] = public_prefix(request) + location
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = CHALICE_CODES.get(str(body["Code"]), "invalid_request")
        response.body = error_body(code, str(body["Message"]))
    if isinstance(response.body, (dict, list)) and not any(
        name.lower() == "content-type" for name in response.headers
    ):
        response.headers["Content-Type"] = "application/json"
    return response


def public_prefix(request: Request) -> str:
    """What precedes the route in the URL the caller used: API Gateway's stage (`/api`), or
    a custom domain's base path; nothing under `chalice local`. API Gateway's proxy event
    gives the path with that prefix in the request context, and without it at the top."""
    full = str((request.context or {}).get("path") or "")
    route = str(request.to_original_event().get("path") or "")
    if route and full.endswith(route):
        return full[: len(full) - len(route)].rstrip("/")
    return ""


def media_type_of(headers: Any) -> str:
    raw = headers.get("content-type") or "application/json"
    return str(raw).split(";")[0].strip().lower()


def is_image_upload(media_type: str) -> bool:
    return media_type.startswith("image/") or media_type == "application/octet-stream"


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


def query_value(query: Mapping[str, Any] | None, name: str) -> object:
    return (query or {}).get(name)


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


def submission_response(submission: Submission) -> Response:
    """202 for a new image (or one sent back to labelling), 200 for bytes seen before."""
    record = submission.record
    return Response(
        body=record_body(record),
        status_code=202 if submission.created else 200,
        headers={"Location": f"/images/{record.image_id}"},
    )


@dataclass(frozen=True)
class SubmitRequest:
    """What a JSON submit asks for: `url` (or `urls` for a batch) and an optional
    `callback_url`."""

    target: object
    callback_url: object


def submit_request(raw_body: bytes, member: str) -> SubmitRequest:
    body = json_object(raw_body)
    if member not in body:
        raise InvalidRequest(f"the JSON body has no `{member}`")
    return SubmitRequest(target=body[member], callback_url=body.get("callback_url"))


def batch_body(items: list[BatchItem]) -> dict[str, Any]:
    results = []
    for item in items:
        if item.submission is not None:
            status = 202 if item.submission.created else 200
            results.append(
                {"url": item.url, "status": status, "image": record_body(item.submission.record)}
            )
        elif item.error is not None:
            results.append(
                {
                    "url": item.url,
                    "status": STATUS_BY_CODE.get(item.error.code, 400),
                    "error": {"code": item.error.code, "message": item.error.message},
                }
            )
    return {"results": results}


def upload_content_type(raw_body: bytes) -> object:
    """The optional `content_type` of POST /uploads (an empty body is fine)."""
    if not raw_body.strip():
        return None
    return json_object(raw_body).get("content_type")


def upload_ticket_response(ticket: UploadTicket, headers: Any) -> Response:
    url = ticket.target.url
    if url.startswith("/"):  # local mode: a path of this API
        url = f"http://{headers.get('host', '127.0.0.1')}{url}"
    body = {
        "image_id": ticket.image_id,
        "upload_url": url,
        "method": "PUT",
        "headers": ticket.target.headers,
        "expires_at": ticket.expires_at.isoformat(),
    }
    return Response(body=body, status_code=201, headers={"Location": f"/images/{ticket.image_id}"})


def upload_signature(query: Mapping[str, Any] | None) -> tuple[str, str]:
    query = query or {}
    return str(query.get("expires", "")), str(query.get("signature", ""))


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


def search_body(name: str, hits: list[LabelHit], next_token: str | None) -> dict[str, Any]:
    return {
        "label": name,
        "images": [{"image_id": hit.image_id, "score": hit.score} for hit in hits],
        "next_token": next_token,
    }


def path_text(segment: str) -> str:
    """A path parameter as text: API Gateway hands them over still percent-encoded."""
    return urllib.parse.unquote(segment)
