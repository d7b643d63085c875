"""HTTP answers: the one mapping from errors to status codes, every answer's finishing
touches (JSON content type, our error shape for Chalice's own errors, the stage prefix of
a Location), and the bodies of submits, batches, upload tickets and searches."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.domain.errors import ImageLabellerError, TooManyRequests, Unauthorized
from chalicelib.domain.models import LabelHit, UploadTicket
from chalicelib.domain.record_json import record_body
from chalicelib.submission import BatchItem, Submission

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "invalid_request": 400,
    "url_not_allowed": 400,
    "unauthorized": 401,
    "upload_not_allowed": 403,
    "not_found": 404,
    "conflict": 409,
    "image_too_large": 413,
    "not_an_image": 415,
    "unsupported_image_format": 415,
    "unsupported_media_type": 415,
    "fetch_failed": 422,
    "too_many_requests": 429,
    "insufficient_storage": 507,
}
# Raw uploads API Gateway must pass through as bytes (it base64-encodes these types).
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


# How a caller presents its API key (RFC 6750), named in every 401.
AUTHENTICATE_HEADER = 'Bearer realm="imagelabeller"'


def error_response(error: ImageLabellerError) -> Response:
    status = STATUS_BY_CODE.get(error.code, 400)
    headers: dict[str, str | list[str]] = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = AUTHENTICATE_HEADER
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    return Response(body=error_body(error.code, error.message), status_code=status, headers=headers)


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


def submission_response(submission: Submission) -> Response:
    """202 for a new image (or one sent back to labelling), 200 for bytes seen before."""
    record = submission.record
    return Response(
        body=record_body(record),
        status_code=202 if submission.created else 200,
        headers={"Location": f"/images/{record.image_id}"},
    )


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


def upload_ticket_response(ticket: UploadTicket, headers: Any) -> Response:
    url = ticket.target.url
    if url.startswith("/"):  # local mode: a path of this API
        url = f"http://{headers.get('host', '127.0.0.1')}{url}"
    body = {
        "image_id": ticket.image_id,
        "upload_url": url,
        "method": "POST",
        "fields": ticket.target.fields,
        "expires_at": ticket.expires_at.isoformat(),
    }
    return Response(body=body, status_code=201, headers={"Location": f"/images/{ticket.image_id}"})


def search_body(name: str, hits: list[LabelHit], next_token: str | None) -> dict[str, Any]:
    return {
        "label": name,
        "images": [{"image_id": hit.image_id, "score": hit.score} for hit in hits],
        "next_token": next_token,
    }
