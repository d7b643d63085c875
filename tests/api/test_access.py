"""Who may do what, through Chalice's test client on the local stage: the key check, the
tenants, the legacy routes and the quotas. (The whole route x caller table runs against
`chalice local` and the deployed stack: tests/system/access_table.py.)"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from tests.support import issue_key, photo_png, revoke_key, solid_image

JSON = {"Content-Type": "application/json"}
MISSING_ID = "00000000-0000-4000-8000-000000000000"


class Callers:
    """The local stage's test client, and keys of two tenants to call it with."""

    def __init__(self, client: Client, data_dir: Path) -> None:
        self.client = client
        self.data_dir = data_dir
        self.acme = issue_key(data_dir, "acme")
        self.globex = issue_key(data_dir, "globex")

    def call(
        self, method: str, path: str, key: str | None, body: bytes = b"", **headers: str
    ) -> Any:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.http.request(method, path, headers=headers, body=body)

    def upload(self, key: str | None, data: bytes) -> Any:
        return self.call("POST", "/images", key, data, **{"Content-Type": "image/png"})

    def revoke(self, key: str) -> None:
        revoke_key(self.data_dir, key)


@pytest.fixture
def callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_env: Path
) -> Iterator[Callers]:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("IMAGELABELLER_DATA_DIR", str(data_dir))
    with Client(app, stage_name="local") as client:
        yield Callers(client, data_dir)


def body(response: Any) -> Any:
    return json.loads(response.body)


def assert_refused(response: Any) -> None:
    assert response.status_code == 401, response.body
    assert body(response)["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="imagelabeller"'
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer ilk_0123456789abcdef_" + "A" * 43,  # well formed, unknown
    ],
)
def test_a_missing_or_bad_key_is_401_with_the_scheme_to_use(
    callers: Callers, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [
        ("POST", "/images"),
        ("GET", f"/images/{MISSING_ID}"),
        ("GET", "/labels/cup/images"),
    ]:
        assert_refused(callers.client.http.request(method, path, headers=headers))


def test_the_scheme_name_is_case_insensitive(callers: Callers) -> None:
    response = callers.client.http.get(
        f"/images/{MISSING_ID}", headers={"authorization": f"bearer {callers.acme}"}
    )
    assert response.status_code == 404


def test_open_routes_need_no_key(callers: Callers) -> None:
    for path in ("/health", "/", "/openapi.json"):
        assert callers.client.http.get(path).status_code == 200


def test_a_method_an_open_route_does_not_take_is_405_with_or_without_a_key(
    callers: Callers,
) -> None:
    for key in (None, callers.acme):
        assert callers.call("PUT", "/health", key).status_code == 405


def test_a_revoked_key_is_refused_from_the_next_request(callers: Callers) -> None:
    assert callers.upload(callers.acme, solid_image()).status_code == 202
    callers.revoke(callers.acme)
    assert_refused(callers.upload(callers.acme, solid_image(size=(10, 10))))


def test_another_tenants_image_answers_exactly_as_a_missing_one(callers: Callers) -> None:
    image_id = body(callers.upload(callers.acme, photo_png("coffee")))["image_id"]
    for method, template in [
        ("GET", "/images/{}"),
        ("POST", "/images/{}/relabel"),
        ("DELETE", "/images/{}"),
        ("GET", "/get-image-label?imageId={}"),
    ]:
        theirs = callers.call(method, template.format(image_id), callers.globex)
        missing = callers.call(method, template.format(MISSING_ID), callers.globex)
        assert theirs.status_code == missing.status_code == 404
        assert body(theirs) == json.loads(missing.body.decode().replace(MISSING_ID, image_id))
    assert callers.call("GET", f"/images/{image_id}", callers.acme).status_code == 200


def test_the_same_bytes_from_two_tenants_are_two_records(callers: Callers) -> None:
    first = callers.upload(callers.acme, photo_png("coffee"))
    second = callers.upload(callers.globex, photo_png("coffee"))
    assert first.status_code == second.status_code == 202
    assert body(first)["image_id"] != body(second)["image_id"]
    again = callers.upload(callers.acme, photo_png("coffee"))
    assert again.status_code == 200
    assert body(again)["image_id"] == body(first)["image_id"]
    gone = callers.call("DELETE", f"/images/{body(first)['image_id']}", callers.acme)
    assert gone.status_code == 204
    kept = callers.call("GET", f"/images/{body(second)['image_id']}", callers.globex)
    assert kept.status_code == 200


def test_legacy_routes_answer_without_a_key_as_the_legacy_tenant(callers: Callers) -> None:
    acme_image = body(callers.upload(callers.acme, photo_png("coffee")))["image_id"]
    keyless = callers.call("GET", f"/get-image-label?imageId={acme_image}", None)
    assert keyless.status_code == 404  # acme's image is not the legacy tenant's
    with_key = callers.call("GET", f"/get-image-label?imageId={acme_image}", callers.acme)
    assert body(with_key) == {"ImageLabel": "NOT_CLASSIFIED"}
    # The rest of the API stays closed to a keyless caller.
    assert_refused(callers.call("GET", f"/images/{acme_image}", None))


def test_a_key_over_its_request_rate_gets_429_with_retry_after(
    callers: Callers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGELABELLER_RATE_LIMIT_PER_MINUTE", "3")
    path = f"/images/{MISSING_ID}"
    statuses = [callers.call("GET", path, callers.acme).status_code for _ in range(3)]
    assert statuses == [404, 404, 404]
    limited = callers.call("GET", path, callers.acme)
    assert limited.status_code == 429
    assert body(limited)["error"]["code"] == "too_many_requests"
    assert int(limited.headers["Retry-After"]) >= 1
    assert callers.call("GET", path, callers.globex).status_code == 404  # its own bucket


def test_a_key_over_its_daily_images_gets_429_and_keeps_what_it_has(
    callers: Callers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGELABELLER_DAILY_IMAGE_QUOTA", "2")
    first = callers.upload(callers.acme, solid_image(size=(11, 11)))
    assert callers.upload(callers.acme, solid_image(size=(12, 12))).status_code == 202
    # The quota is reserved before a submit knows its bytes: a used-up day refuses even
    # bytes the tenant sent before (which, with room left, cost nothing: see below).
    assert callers.upload(callers.acme, solid_image(size=(11, 11))).status_code == 429
    over = callers.upload(callers.acme, solid_image(size=(13, 13)))
    assert over.status_code == 429
    assert body(over)["error"]["code"] == "too_many_requests"
    assert int(over.headers["Retry-After"]) >= 1
    kept = callers.call("GET", f"/images/{body(first)['image_id']}", callers.acme)
    assert kept.status_code == 200
    assert callers.upload(callers.globex, solid_image(size=(13, 13))).status_code == 202


def test_refused_and_repeated_submits_do_not_use_up_the_daily_images(
    callers: Callers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGELABELLER_DAILY_IMAGE_QUOTA", "2")
    assert callers.upload(callers.acme, solid_image(size=(9, 9))).status_code == 202
    for _ in range(3):
        assert callers.upload(callers.acme, b"not an image").status_code == 415
        assert callers.upload(callers.acme, solid_image(size=(9, 9))).status_code == 200
    assert callers.upload(callers.acme, solid_image()).status_code == 202


def test_no_key_secret_is_ever_logged(
    callers: Callers, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    callers.upload(callers.acme, solid_image())
    callers.call("GET", f"/images/{MISSING_ID}", callers.acme)
    callers.call("GET", f"/images/{MISSING_ID}", callers.acme + "x")
    callers.revoke(callers.globex)
    callers.call("GET", f"/images/{MISSING_ID}", callers.globex)
    output = capsys.readouterr()
    logged = caplog.text + output.out + output.err
    for key in (callers.acme, callers.globex):
        assert key.split("_", 2)[2] not in logged
