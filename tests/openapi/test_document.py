"""chalicelib/http/openapi.json: a valid OpenAPI 3.1 document that describes exactly the routes
app.py serves, with the error shape and codes chalicelib/http/responses.py answers, and the
API key every operation but the open ones needs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from chalicelib.http import callers, responses
from chalicelib.http import page as web
from chalicelib.http.requests import IMAGE_MEDIA_TYPES
from tests.openapi.routes import served_operations

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Answered without a key (issue 15): liveness, the page, this document, and local mode's
# upload form target (its signed form authorises it, as S3's policy does).
# What the key check lets through without a key (chalicelib/http/callers.py), and so what
# the document must declare open.
OPEN_OPERATIONS = {f"{method} {route}" for method, route in callers.OPEN_ROUTES}
LEGACY_OPERATIONS = {f"{method} {route}" for method, route in callers.LEGACY_ROUTES}
# Open as the `legacy` tenant where the stage says so, else keyed like the rest.
API_KEY: dict[str, list[str]] = {"apiKey": []}


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


def security_of(operation: dict[str, Any]) -> list[dict[str, list[str]]]:
    """The operation's own requirements, else the document's."""
    requirements: list[dict[str, list[str]]] = operation.get("security", document()["security"])
    return requirements


def secured_operations() -> list[str]:
    return sorted(set(documented_operations()) - OPEN_OPERATIONS)


def test_the_api_key_is_a_bearer_token_every_operation_needs_by_default() -> None:
    spec = document()
    scheme = spec["components"]["securitySchemes"]["apiKey"]
    assert {name: scheme[name] for name in ("type", "scheme")} == {
        "type": "http",
        "scheme": "bearer",
    }
    assert "Authorization: Bearer" in scheme["description"]
    assert spec["security"] == [API_KEY]


def needs_no_key(operation: dict[str, Any]) -> bool:
    """No requirement at all, or one alternative that is empty ({})."""
    security = security_of(operation)
    return security == [] or {} in security


def test_only_the_open_operations_and_the_legacy_ones_can_be_called_without_a_key() -> None:
    operations_by_label = dict(operations())
    assert documented_operations() >= OPEN_OPERATIONS | LEGACY_OPERATIONS
    keyless = {label for label, operation in operations_by_label.items() if needs_no_key(operation)}
    assert keyless == OPEN_OPERATIONS | LEGACY_OPERATIONS
    for label in OPEN_OPERATIONS:
        assert operations_by_label[label]["security"] == [], label


@pytest.mark.parametrize("label", sorted(LEGACY_OPERATIONS))
def test_the_legacy_operations_take_a_key_or_none_where_the_stage_keeps_them_open(
    label: str,
) -> None:
    operation = dict(operations())[label]
    assert operation["security"] == [API_KEY, {}]
    assert "IMAGELABELLER_LEGACY_ROUTES_OPEN" in operation["description"]


@pytest.mark.parametrize("label", secured_operations())
def test_every_secured_operation_needs_the_key_and_documents_401_and_429(label: str) -> None:
    operation = dict(operations())[label]
    assert API_KEY in security_of(operation)
    refused = resolve(operation["responses"]["401"])
    limited = resolve(operation["responses"]["429"])
    assert error_codes_in(refused) == {"unauthorized"}
    assert error_codes_in(limited) == {"too_many_requests"}
    assert resolve(refused["headers"]["WWW-Authenticate"])["required"] is True
    assert resolve(limited["headers"]["Retry-After"])["schema"] == {"type": "integer", "minimum": 1}


@pytest.mark.parametrize("label", sorted(OPEN_OPERATIONS))
def test_open_operations_document_no_401_or_429(label: str) -> None:
    responses = dict(operations())[label]["responses"]
    assert "401" not in responses
    assert "429" not in responses
