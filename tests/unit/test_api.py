"""chalicelib/http: how every answer is finished, and how bodies are parsed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.app import Request, Response

from chalicelib.domain.errors import InvalidRequest
from chalicelib.http import responses
from chalicelib.http.requests import batch_submit, json_object, url_submit


def proxy_request(path: str, context_path: str) -> Request:
    """A REST API proxy event as API Gateway (or chalice local) hands it to Lambda."""
    event: dict[str, Any] = {
        "path": path,
        "headers": {},
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "requestContext": {"resourcePath": "/images", "httpMethod": "POST", "path": context_path},
    }
    return Request(event)


@pytest.mark.parametrize(
    ("path", "context_path", "location"),
    [
        ("/images", "/api/images", "/api/images/abc"),  # API Gateway's own URL, stage api
        ("/images", "/labeller/v1/images", "/labeller/v1/images/abc"),  # a custom domain
        ("/images", "/images", "/images/abc"),  # chalice local
    ],
)
def test_location_carries_the_prefix_the_caller_used(
    path: str, context_path: str, location: str
) -> None:
    response = Response(body={}, status_code=202, headers={"Location": "/images/abc"})
    finished = responses.finish_response(response, proxy_request(path, context_path))
    assert finished.headers["Location"] == location


def test_absolute_locations_are_left_alone() -> None:
    response = Response(body={}, status_code=201, headers={"Location": "https://x.example/a"})
    finished = responses.finish_response(response, proxy_request("/images", "/api/images"))
    assert finished.headers["Location"] == "https://x.example/a"


@pytest.mark.parametrize(
    "raw", [b"", b"{not json", b"\xff", b"[" * 100_000 + b"]" * 100_000, b"[]", b'"url"']
)
def test_a_body_that_is_no_json_object_is_an_invalid_request(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        json_object(raw)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": None},
        {"url": 42},
        {"url": ["https://x"]},
        {"url": "https://x", "callback_url": 7},
    ],
)
def test_a_submit_whose_members_are_not_text_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        url_submit(json.dumps(body).encode())


@pytest.mark.parametrize("body", [{"urls": "https://x"}, {"urls": [1]}, {"urls": None}, {}])
def test_a_batch_whose_urls_are_not_a_list_of_text_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        batch_submit(json.dumps(body).encode())
