"""The key check's rules without HTTP: which routes are open, the legacy routes per stage,
the unchecked mode, and the Bearer header's parsing."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.app import Request

from chalicelib.config import Settings
from chalicelib.domain.api_keys import Principal
from chalicelib.domain.errors import TooManyRequests, Unauthorized
from chalicelib.http.callers import (
    LEGACY_CALLER,
    UNCHECKED_CALLER,
    caller_of,
    check_caller,
    identify,
    presented_key,
)

GOOD = "ilk_0123456789abcdef_" + "g" * 43
ACME = Principal(key_id="0123456789abcdef", tenant="acme")


class OneKey:
    def authenticate(self, presented: str) -> Principal | None:
        return ACME if presented == GOOD else None


def request(method: str, route: str, authorization: str | None = None) -> Request:
    headers = {} if authorization is None else {"authorization": authorization}
    event: dict[str, Any] = {
        "httpMethod": method,
        "headers": headers,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"resourcePath": route, "httpMethod": method},
        "body": None,
        "isBase64Encoded": False,
        "path": route,
    }
    return Request(event)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (f"Bearer {GOOD}", GOOD),
        (f"bearer   {GOOD}  ", GOOD),
        ("Bearer", None),
        ("Basic abc", None),
        ("", None),
        (GOOD, None),
    ],
)
def test_the_key_is_read_from_a_bearer_authorization_header(value: str, key: str | None) -> None:
    assert presented_key({"authorization": value}) == key


def test_open_routes_have_no_caller_and_need_no_key() -> None:
    for method, route in [("GET", "/"), ("GET", "/health"), ("GET", "/openapi.json")]:
        assert identify(request(method, route), Settings(), OneKey()) is None
    assert identify(request("POST", "/uploads/{image_id}"), Settings(), OneKey()) is None


def test_other_methods_on_open_paths_pass_the_check_to_get_405_alike() -> None:
    assert identify(request("DELETE", "/health"), Settings(), OneKey()) is None
    assert identify(request("PUT", "/uploads/{image_id}"), Settings(), OneKey()) is None


def test_legacy_routes_without_a_key_are_the_legacy_tenants_only_where_open() -> None:
    legacy = request("GET", "/get-image-label")
    assert identify(legacy, Settings(legacy_routes_open=True), OneKey()) == LEGACY_CALLER
    with pytest.raises(Unauthorized):
        identify(legacy, Settings(legacy_routes_open=False), OneKey())
    keyed = request("GET", "/submit-image", f"Bearer {GOOD}")
    assert identify(keyed, Settings(legacy_routes_open=True), OneKey()) == ACME
    with pytest.raises(Unauthorized):
        identify(request("GET", "/submit-image", "Bearer nope"), Settings(), OneKey())


def test_with_keys_switched_off_everyone_is_the_unchecked_caller() -> None:
    settings = Settings(require_api_keys=False)
    assert identify(request("GET", "/images/{image_id}"), settings, OneKey()) == UNCHECKED_CALLER


def test_a_checked_caller_is_held_to_its_rate_and_kept_on_the_request() -> None:
    admitted: list[str] = []
    keyed = request("GET", "/images/{image_id}", f"Bearer {GOOD}")
    check_caller(keyed, Settings(), OneKey(), admitted.append)
    assert admitted == [ACME.key_id]
    assert caller_of(keyed) == ACME


def test_a_caller_over_its_rate_is_refused_before_the_route_runs() -> None:
    def over(key_id: str) -> None:
        raise TooManyRequests("over", retry_after=3)

    keyed = request("GET", "/images/{image_id}", f"Bearer {GOOD}")
    with pytest.raises(TooManyRequests):
        check_caller(keyed, Settings(), OneKey(), over)
    with pytest.raises(AssertionError):
        caller_of(keyed)
