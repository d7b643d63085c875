"""chalicelib/http/openapi.json: a valid OpenAPI 3.1 document that describes exactly the routes
app.py serves, with the error shape and codes chalicelib/http/responses.py answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from chalicelib.http import page as web
from chalicelib.http import responses
from chalicelib.http.requests import IMAGE_MEDIA_TYPES
from tests.openapi.routes import served_operations

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(web.openapi_text())
    return loaded


def documented_operations() -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def operations() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (one hop is all this document uses outside schemas)."""
    while "$ref" in node:
        target: Any = document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_is_a_valid_openapi_3_1_document() -> None:
    """The validator also checks every schema against OpenAPI 3.1's JSON Schema dialect."""
    spec = document()
    assert spec["openapi"] == "3.1.0"
    validate(spec, cls=OpenAPIV31SpecValidator)


def test_every_route_the_app_serves_is_documented_with_its_methods() -> None:
    undocumented = served_operations() - documented_operations()
    assert not undocumented, f"served by app.py but not in openapi.json: {sorted(undocumented)}"


def test_every_documented_operation_is_served_by_the_app() -> None:
    unserved = documented_operations() - served_operations()
    assert not unserved, f"in openapi.json but not routed in app.py: {sorted(unserved)}"


def test_operation_ids_are_unique() -> None:
    ids = [operation["operationId"] for _label, operation in operations()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("label", sorted(documented_operations()))
def test_every_operation_documents_405_and_only_json_errors(label: str) -> None:
    operation = dict(operations())[label]
    responses = operation["responses"]
    assert "405" in responses, "every route answers 405 for a method it does not take"
    for status, response in responses.items():
        if int(status) >= 400:
            content = resolve(response)["content"]
            assert set(content) == {"application/json"}, status


def error_codes_in(response: dict[str, Any]) -> set[str]:
    """The codes an error response allows: Error narrowed by an `enum` in an allOf."""
    schema = response["content"]["application/json"]["schema"]
    narrowing = schema["allOf"][1]["properties"]["error"]["properties"]["code"]
    return set(narrowing["enum"])


def test_error_responses_use_each_code_with_the_status_the_api_gives_it() -> None:
    status_by_code = {**responses.STATUS_BY_CODE, "method_not_allowed": 405}
    for label, operation in operations():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            for code in error_codes_in(resolve(response)):
                assert status_by_code[code] == int(status), f"{label}: {code} under {status}"


def test_every_error_code_the_api_answers_is_in_the_error_code_enum() -> None:
    enum = set(document()["components"]["schemas"]["ErrorCode"]["enum"])
    chalice_codes = set(responses.CHALICE_CODES.values()) - {"internal_error"}
    assert set(responses.STATUS_BY_CODE) | chalice_codes <= enum


def test_image_uploads_accept_every_image_media_type_the_api_lists() -> None:
    paths = document()["paths"]
    listed = set(IMAGE_MEDIA_TYPES) - {"image/jpg", "image/x-ms-bmp", "image/heic"}
    content = paths["/images"]["post"]["requestBody"]["content"]
    assert listed <= set(content)
    for media_type in listed:
        assert content[media_type]["schema"] == {"type": "string", "format": "binary"}
    form = paths["/uploads/{image_id}"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": "The image's bytes, last.",
    }
    assert listed <= set(form["encoding"]["file"]["contentType"].split(", "))
