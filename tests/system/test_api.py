"""System tests of the public API, black-box, against any running ImageLabeller.

By default they start `chalice local` (as `make run` does) with a key of the tenant
`system-tests` in its data folder, and serve the photos from a loopback HTTP server.
Against a deployed stage (scripts/deploy's system-tests step sets all but the photos),
set:

- `IMAGELABELLER_BASE_URL`: the API's base URL (e.g. the app stack's `EndpointURL` output);
- `IMAGELABELLER_SYSTEM_TEST_API_KEY`: an API key of the stage, which every call but the
  keyless checks sends (`imagelabeller keys create --tenant system-tests --stage STAGE`;
  revoke it afterwards);
- `IMAGELABELLER_SYSTEM_TEST_LEGACY_OPEN`: `true` or `false`, the stage's
  `IMAGELABELLER_LEGACY_ROUTES_OPEN` (.chalice/config.json): whether the original's
  GET /submit-image and /get-image-label answer without a key;
- `IMAGELABELLER_PHOTO_BASE_URL` (optional): a public folder holding scikit-image's photos
  (coffee.png, chelsea.png, motorcycle_left.png), by default scikit-image's own repository
  at the release we test with. A deployed stage refuses private addresses, so the photos
  must be public there.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support import (
    EXPECTED_TOP_LABELS,
    PHOTO_FILES,
    loopback_server,
    photo_jpeg,
    photo_png,
    poll,
)
from tests.system.chalice_local import ROOT, ChaliceLocal
from tests.system.client import ApiClient

PUBLIC_PHOTOS = "https://raw.githubusercontent.com/scikit-image/scikit-image/v0.26.0/skimage/data/"
BASE_URL_VARIABLE = "IMAGELABELLER_BASE_URL"
API_KEY_VARIABLE = "IMAGELABELLER_SYSTEM_TEST_API_KEY"
LEGACY_OPEN_VARIABLE = "IMAGELABELLER_SYSTEM_TEST_LEGACY_OPEN"
LOCAL_STAGE = "local"
# The answer to a call without a usable key (chalicelib/http/responses.py).
AUTHENTICATE = 'Bearer realm="imagelabeller"'
# A well-formed key that no stage ever issued.
UNKNOWN_KEY = "ilk_0123456789abcdef_" + "x" * 43
NO_SUCH_IMAGE = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Target:
    api: ApiClient  # sends the key on every call
    photo_url: Callable[[str], str]  # a URL the service can fetch, by photo file name
    legacy_open: bool  # GET /submit-image and /get-image-label answer without a key

    def session(self) -> requests.Session:
        """A requests session that sends the key, for calls ApiClient has no method for."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.api.api_key}"
        return session


def deployed_settings(environment: Mapping[str, str]) -> tuple[str, bool]:
    """The key and the legacy routes' setting a deployed stage's tests need; a failure
    that says what to set when one is missing."""
    key = environment.get(API_KEY_VARIABLE, "").strip()
    if not key:
        pytest.fail(
            f"{BASE_URL_VARIABLE} is set but {API_KEY_VARIABLE} is not: every route but the "
            "open ones needs an API key. scripts/deploy's system-tests step makes one for "
            "each run; by hand: `imagelabeller keys create --tenant system-tests --stage "
            "<stage>`, and revoke it after the tests",
            pytrace=False,
        )
    legacy = environment.get(LEGACY_OPEN_VARIABLE, "").strip().lower()
    if legacy not in ("true", "false"):
        pytest.fail(
            f"{LEGACY_OPEN_VARIABLE} must be true or false (it is {legacy!r}): the stage's "
            "IMAGELABELLER_LEGACY_ROUTES_OPEN in .chalice/config.json, which scripts/deploy "
            "passes on",
            pytrace=False,
        )
    return key, legacy == "true"


def local_legacy_routes_open() -> bool:
    """The local stage's IMAGELABELLER_LEGACY_ROUTES_OPEN, as `chalice local` reads it."""
    config = json.loads(Path(ROOT, ".chalice", "config.json").read_text(encoding="utf-8"))
    variables = config["stages"][LOCAL_STAGE]["environment_variables"]
    return str(variables.get("IMAGELABELLER_LEGACY_ROUTES_OPEN", "false")).lower() == "true"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base_url = os.environ.get(BASE_URL_VARIABLE)
    if base_url:
        key, legacy_open = deployed_settings(os.environ)
        photos = os.environ.get("IMAGELABELLER_PHOTO_BASE_URL", PUBLIC_PHOTOS).rstrip("/")
        yield Target(ApiClient(base_url, api_key=key), lambda name: f"{photos}/{name}", legacy_open)
        return
    folder = tmp_path_factory.mktemp("chalice-local")
    with loopback_server() as photos_server:
        for name in PHOTO_FILES:
            photos_server.serve(f"/{PHOTO_FILES[name]}", photo_png(name))
        server = ChaliceLocal(folder / "data", folder / "chalice.log", stage=LOCAL_STAGE).start()
        try:
            yield Target(
                ApiClient(server.base_url, api_key=server.api_key),
                lambda name: photos_server.url(f"/{name}"),
                local_legacy_routes_open(),
            )
        finally:
            server.stop()


def assert_refused_for_want_of_a_key(response: requests.Response) -> None:
    """401 in our error shape, saying how to present a key."""
    assert response.status_code == 401, (response.request.url, response.text)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["WWW-Authenticate"] == AUTHENTICATE
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["code"] == "unauthorized"


def test_photos_submitted_by_url_and_upload_become_correctly_classified(target: Target) -> None:
    api = target.api
    by_url = api.submit_url(target.photo_url(PHOTO_FILES["coffee"]))
    by_upload = api.submit_upload(photo_jpeg("chelsea"), "image/jpeg")
    legacy = api.legacy_submit(target.photo_url(PHOTO_FILES["motorcycle"]))

    expected = {by_url: "coffee", by_upload: "chelsea", legacy: "motorcycle"}
    for image_id, photo in expected.items():
        finished = api.wait_until_finished(image_id)
        assert finished["status"] == "CLASSIFIED", finished
        assert finished["labels"][0]["name"] in EXPECTED_TOP_LABELS[photo]
        assert len(finished["labels"]) == 5
        assert finished["model"]

    label = api.legacy_label(legacy)
    assert label.split(", ")[0] in EXPECTED_TOP_LABELS["motorcycle"]
    assert len(label.split(", ")) == 5

    top_label = api.record(by_url)["labels"][0]["name"]
    assert by_url in api.images_with_label(top_label)


def test_a_photo_uploaded_with_an_upload_form_becomes_correctly_classified(
    target: Target,
) -> None:
    """The direct upload path: POST /uploads, then the form to `upload_url` (S3's
    presigned POST on AWS, the API itself in local mode), then the record."""
    image_id = target.api.upload_directly(photo_jpeg("coffee"), "image/jpeg")
    finished = target.api.wait_until_uploaded_and_finished(image_id)
    assert finished["status"] == "CLASSIFIED", finished
    assert finished["labels"][0]["name"] in EXPECTED_TOP_LABELS["coffee"]


def test_an_upload_over_the_size_limit_is_refused_and_stores_nothing(target: Target) -> None:
    """One byte over the limit: S3 refuses the form itself (400 EntityTooLarge, from the
    policy's content-length-range) and local mode answers 413; either way no record ever
    appears. An S3 that does not check the policy (an emulator) stores it, and then the
    upload function refuses it by its size, unread: FAILED, image_too_large."""
    api = target.api
    limit = int(os.environ.get("IMAGELABELLER_MAX_IMAGE_BYTES", str(10 * 1024 * 1024)))
    photo = photo_jpeg("coffee")
    ticket = api.start_direct_upload("image/jpeg")
    answer = api.post_upload_form(ticket, photo + b"\0" * (limit + 1 - len(photo)))
    image_id = ticket["image_id"]
    if answer.status_code == 413:
        assert answer.json()["error"]["code"] == "image_too_large"
    elif answer.status_code == 400:
        assert "EntityTooLarge" in answer.text, answer.text
    else:
        assert 200 <= answer.status_code < 300, answer.text
        finished = api.wait_until_uploaded_and_finished(image_id)
        assert finished["status"] == "FAILED" and "image_too_large" in finished["error"]
        return
    if not os.environ.get(BASE_URL_VARIABLE):
        assert answer.status_code == 413  # local mode checks the size itself
    missing = target.session().get(f"{api.base_url}/images/{image_id}", timeout=30)
    assert missing.status_code == 404, missing.text


def test_bad_input_gets_4xx_json_and_the_service_keeps_serving(target: Target) -> None:
    base, http = target.api.base_url, target.session()
    json_type = {"Content-Type": "application/json"}
    truncated = photo_jpeg("coffee")[:20000]
    bad_requests = [
        (http.post(f"{base}/images", data="{oops", headers=json_type, timeout=30), 400),
        (http.post(f"{base}/images", json={}, timeout=30), 400),
        (http.post(f"{base}/images", json={"url": "ftp://example.com/x.jpg"}, timeout=30), 400),
        (http.post(f"{base}/images", json={"url": "file:///etc/passwd"}, timeout=30), 400),
        (http.get(f"{base}/images/{NO_SUCH_IMAGE}", timeout=30), 404),
        (
            http.post(
                f"{base}/images",
                data=b"plain text",
                headers={"Content-Type": "image/png"},
                timeout=30,
            ),
            415,
        ),
        (
            http.post(
                f"{base}/images", data=truncated, headers={"Content-Type": "image/jpeg"}, timeout=30
            ),
            415,
        ),
        (
            http.post(
                f"{base}/images", json={"url": target.photo_url("no-such-photo.png")}, timeout=30
            ),
            422,
        ),
        (http.get(f"{base}/get-image-label", timeout=30), 400),
    ]
    for response, status in bad_requests:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert set(response.json()["error"]) == {"code", "message"}
    image_id = target.api.submit_upload(photo_png("coffee"), "image/png")
    assert target.api.wait_until_finished(image_id)["status"] == "CLASSIFIED"


def test_deeply_nested_json_is_a_bad_request_not_a_crash(target: Target) -> None:
    base, http = target.api.base_url, target.session()
    json_type = {"Content-Type": "application/json"}
    nested = "[" * 100_000 + "]" * 100_000
    for path in ("/images", "/images/batch", "/uploads"):
        for raw in (nested, '{"url": ' + nested + "}"):
            response = http.post(f"{base}{path}", data=raw, headers=json_type, timeout=30)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["code"] == "invalid_request"
    # 3,000 levels are past the parser's limit, and the token still fits in a URL.
    token = base64.urlsafe_b64encode(b"[" * 3_000 + b"]" * 3_000).decode()
    response = http.get(f"{base}/labels/espresso/images?next_token={token}", timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert requests.get(f"{base}/health", timeout=30).status_code == 200  # open: no key


# MiniStack does not read the gateway responses Chalice's swagger carries
# (`x-amazon-apigateway-gateway-responses`); AWS does. tests/rehearsal deploys there.
@pytest.mark.skipif(
    bool(os.environ.get("IMAGELABELLER_DEPLOY_EMULATOR")),
    reason="the emulator answers a path with no route itself (403), without our gateway responses",
)
def test_a_path_no_route_takes_answers_404_in_our_error_shape(target: Target) -> None:
    base, http = target.api.base_url, target.session()
    for response in (
        http.get(f"{base}/no-such-route", timeout=30),
        http.post(f"{base}/images/a/b/c", json={}, timeout=30),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


def test_a_request_without_a_usable_key_is_refused_with_401_in_our_error_shape(
    target: Target,
) -> None:
    """No key, an unknown key, or a header in another scheme: refused before anything is
    read or submitted. The open routes answer without a key."""
    base = target.api.base_url
    photo = target.photo_url(PHOTO_FILES["coffee"])
    for headers in (
        {},
        {"Authorization": f"Bearer {UNKNOWN_KEY}"},
        {"Authorization": f"Basic {target.api.api_key}"},
    ):
        for response in (
            requests.post(f"{base}/images", json={"url": photo}, headers=headers, timeout=30),
            requests.get(f"{base}/images/{NO_SUCH_IMAGE}", headers=headers, timeout=30),
            requests.get(f"{base}/labels/espresso/images", headers=headers, timeout=30),
            requests.post(
                f"{base}/uploads", json={"content_type": "image/png"}, headers=headers, timeout=30
            ),
            requests.post(
                f"{base}/images/batch", json={"urls": [photo]}, headers=headers, timeout=30
            ),
        ):
            assert_refused_for_want_of_a_key(response)
    for path in ("/health", "/", "/openapi.json"):
        assert requests.get(f"{base}{path}", timeout=30).status_code == 200, path


def test_the_legacy_routes_answer_without_a_key_only_where_the_stage_keeps_them_open(
    target: Target,
) -> None:
    """Where they are open, a keyless caller is the `legacy` tenant, whose images no key
    sees; where they are closed, they need a key like every other route (with one, the
    first test used them)."""
    api = target.api
    photo = target.photo_url(PHOTO_FILES["chelsea"])
    if not target.legacy_open:
        base = api.base_url
        for response in (
            requests.get(f"{base}/submit-image", params={"url": photo}, timeout=30),
            requests.get(f"{base}/get-image-label", params={"imageId": NO_SUCH_IMAGE}, timeout=30),
        ):
            assert_refused_for_want_of_a_key(response)
        return
    image_id = api.legacy_submit(photo, keyless=True)
    label = poll(
        lambda: api.legacy_label(image_id, keyless=True),
        lambda current: current != "NOT_CLASSIFIED",
        timeout=60,
    )
    assert label.split(", ")[0] in EXPECTED_TOP_LABELS["chelsea"], label
    own = target.session().get(f"{api.base_url}/images/{image_id}", timeout=30)
    assert own.status_code == 404, own.text  # legacy's image, not the key's tenant's
