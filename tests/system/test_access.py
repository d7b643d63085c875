"""Who may do what, black-box, on the real `chalice local` of the local stage (issue 15):
every route against every kind of caller (tests/system/access_table.py), tenants that
never see each other's images, a key refused from the request after its revocation, no
key in the server's log, and the daily image quota.

The servers label with the tiny stand-in graph (tests/fixtures/tiny_model.py): these
tests hold whatever the labels are called.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.bootstrap import api_keys_for
from chalicelib.config import Settings
from tests.support import issue_key, jpeg_variant, loopback_server, photo_jpeg, photo_png
from tests.system import access_table
from tests.system.chalice_local import ROOT, ChaliceLocal
from tests.system.client import ApiClient

TIMEOUT = 30


@pytest.fixture(scope="module")
def photo_url() -> Iterator[str]:
    """A real photo on a loopback HTTP server, which the local stage may fetch."""
    with loopback_server() as photos:
        yield photos.serve("/coffee.png", photo_png("coffee"))


def start(
    folder: Path,
    tiny_model: Path,
    settings: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> ChaliceLocal:
    """`chalice local` of the local stage with changed `settings` (IMAGELABELLER_<NAME>)
    and more `environment`, labelling with the tiny graph."""
    folder.mkdir(parents=True, exist_ok=True)
    stage, stage_environment = local_stage_with(model_path=str(tiny_model), **(settings or {}))
    return ChaliceLocal(
        folder / "data",
        folder / "chalice.log",
        stage=stage,
        environment={**stage_environment, **(environment or {})},
    ).start()


def local_stage_with(**changes: str) -> tuple[str, dict[str, str]]:
    """A stage and environment that are the local stage's with `changes`. chalice local
    puts a stage's variables over the process's, so a change to one of the local stage's
    own (IMAGELABELLER_LEGACY_ROUTES_OPEN) needs a stage .chalice/config.json does not
    name, given all of the local stage's variables."""
    environment = {f"IMAGELABELLER_{name.upper()}": value for name, value in changes.items()}
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    local = config["stages"]["local"]["environment_variables"]
    if not set(environment) & set(local):
        return "local", environment
    return "local-as-changed-by-test-access", {**local, **environment}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_onnx_model: Path
) -> Iterator[ChaliceLocal]:
    """The local stage as it is: legacy routes open, the default quotas."""
    local = start(tmp_path_factory.mktemp("access"), tiny_onnx_model)
    yield local
    local.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def revoke(server: ChaliceLocal, key: str) -> None:
    """Revoke `key` in the server's data folder, as `imagelabeller keys revoke` does."""
    settings = Settings.from_environ({"IMAGELABELLER_DATA_DIR": str(server.data_dir)})
    api_keys_for(settings).revoke(key.split("_")[1])


def upload(base_url: str, key: str | None, data: bytes) -> requests.Response:
    headers = {"Content-Type": "image/jpeg", **(bearer(key) if key else {})}
    return requests.post(f"{base_url}/images", data=data, headers=headers, timeout=TIMEOUT)


def is_our_error(response: requests.Response, status: int, code: str) -> bool:
    try:
        error: Any = response.json()["error"]
    except (ValueError, KeyError):
        return False
    return bool(
        response.status_code == status
        and response.headers.get("Content-Type") == "application/json"
        and set(error) == {"code", "message"}
        and error["code"] == code
    )


# --- every route x every caller --------------------------------------------------------


@pytest.mark.parametrize("legacy_open", [True, False], ids=["legacy-open", "legacy-closed"])
def test_every_route_answers_every_kind_of_caller_as_the_access_table_says(
    tmp_path: Path, tiny_onnx_model: Path, photo_url: str, legacy_open: bool
) -> None:
    # The local stage opens the legacy routes; the other run closes them as a stage may.
    local = start(tmp_path, tiny_onnx_model, {} if legacy_open else {"legacy_routes_open": "false"})
    try:
        owner = issue_key(local.data_dir, "owner")
        intruder = issue_key(local.data_dir, "intruder")
        revoked = issue_key(local.data_dir, "owner")
        revoke(local, revoked)
        api = ApiClient(local.base_url, owner)
        image_id = api.submit_url(photo_url)
        assert api.wait_until_finished(image_id)["status"] == "CLASSIFIED"

        keys = access_table.Keys(own=owner, other=intruder, revoked=revoked)
        wrong = access_table.run(local.base_url, keys, image_id, photo_url, legacy_open)
        assert wrong == [], "\n".join(wrong)

        keyless_submit = requests.get(
            f"{local.base_url}/submit-image", params={"url": photo_url}, timeout=TIMEOUT
        )
        if legacy_open:
            # The legacy tenant's own record: not the owner's, which it may not see.
            assert keyless_submit.status_code == 200, keyless_submit.text
            assert keyless_submit.json()["ImageId"] != image_id
        else:
            assert is_our_error(keyless_submit, 401, "unauthorized"), keyless_submit.text
            assert keyless_submit.headers["WWW-Authenticate"].startswith("Bearer ")
            keyless_label = requests.get(
                f"{local.base_url}/get-image-label", params={"imageId": image_id}, timeout=TIMEOUT
            )
            assert is_our_error(keyless_label, 401, "unauthorized"), keyless_label.text
    finally:
        local.stop()


# --- tenants ---------------------------------------------------------------------------


def test_two_tenants_uploading_the_same_bytes_each_get_their_own_record(
    server: ChaliceLocal,
) -> None:
    alice, bob = issue_key(server.data_dir, "alice"), issue_key(server.data_dir, "bob")
    data = jpeg_variant(photo_jpeg("chelsea"), 15_001)
    base = server.base_url

    first = {name: upload(base, key, data) for name, key in (("alice", alice), ("bob", bob))}
    assert [answer.status_code for answer in first.values()] == [202, 202]
    ids = {name: answer.json()["image_id"] for name, answer in first.items()}
    assert ids["alice"] != ids["bob"]
    again = upload(base, alice, data)
    assert (again.status_code, again.json()["image_id"]) == (200, ids["alice"])

    apis = {"alice": ApiClient(base, alice), "bob": ApiClient(base, bob)}
    top = {name: apis[name].wait_until_finished(ids[name])["labels"][0]["name"] for name in ids}
    assert top["alice"] == top["bob"]  # the same bytes, the same labels
    assert ids["alice"] in apis["alice"].images_with_label(top["alice"])
    assert ids["bob"] not in apis["alice"].images_with_label(top["alice"])
    assert ids["bob"] in apis["bob"].images_with_label(top["bob"])
    assert ids["alice"] not in apis["bob"].images_with_label(top["bob"])

    # Each deletes its own; neither can touch the other's.
    other = requests.delete(f"{base}/images/{ids['bob']}", headers=bearer(alice), timeout=TIMEOUT)
    assert is_our_error(other, 404, "not_found"), other.text
    gone = requests.delete(f"{base}/images/{ids['alice']}", headers=bearer(alice), timeout=TIMEOUT)
    assert gone.status_code == 204, gone.text
    read = requests.get(f"{base}/images/{ids['alice']}", headers=bearer(alice), timeout=TIMEOUT)
    assert read.status_code == 404
    assert apis["bob"].record(ids["bob"])["status"] == "CLASSIFIED"
    assert ids["bob"] in apis["bob"].images_with_label(top["bob"])
    bob_again = upload(base, bob, data)
    assert (bob_again.status_code, bob_again.json()["image_id"]) == (200, ids["bob"])
    deleted = requests.delete(f"{base}/images/{ids['bob']}", headers=bearer(bob), timeout=TIMEOUT)
    assert deleted.status_code == 204, deleted.text


# --- revocation ------------------------------------------------------------------------


def test_a_key_revoked_while_the_server_runs_is_refused_from_the_next_request(
    server: ChaliceLocal,
) -> None:
    key = issue_key(server.data_dir, "revocable")
    sibling = issue_key(server.data_dir, "revocable")
    submitted = upload(server.base_url, key, jpeg_variant(photo_jpeg("coffee"), 15_002))
    assert submitted.status_code == 202, submitted.text
    url = f"{server.base_url}/images/{submitted.json()['image_id']}"
    assert requests.get(url, headers=bearer(key), timeout=TIMEOUT).status_code == 200

    revoke(server, key)
    refused = requests.get(url, headers=bearer(key), timeout=TIMEOUT)
    assert is_our_error(refused, 401, "unauthorized"), refused.text
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    # The tenant's other key, and its image, are untouched.
    assert requests.get(url, headers=bearer(sibling), timeout=TIMEOUT).status_code == 200


# --- the log ---------------------------------------------------------------------------


def test_no_key_secret_reaches_the_server_log(
    tmp_path: Path, tiny_onnx_model: Path, photo_url: str
) -> None:
    # Every line the app writes, debug included.
    local = start(tmp_path, tiny_onnx_model, environment={"POWERTOOLS_LOG_LEVEL": "DEBUG"})
    try:
        good = issue_key(local.data_dir, "logged")
        revoked = issue_key(local.data_dir, "logged")
        revoke(local, revoked)
        unknown = "ilk_0123456789abcdef_" + secrets.token_urlsafe(32)
        malformed = "not-a-key-" + secrets.token_hex(16)
        api = ApiClient(local.base_url, good)
        image_id = api.submit_url(photo_url)
        api.submit_upload(jpeg_variant(photo_jpeg("coffee"), 15_003), "image/jpeg")
        api.wait_until_finished(image_id)
        api.legacy_label(image_id)
        api.legacy_submit(photo_url, keyless=True)
        for presented in (None, unknown, malformed, revoked):
            headers = {} if presented is None else bearer(presented)
            read = requests.get(
                f"{local.base_url}/images/{image_id}", headers=headers, timeout=TIMEOUT
            )
            assert is_our_error(read, 401, "unauthorized"), read.text
            refused = upload(local.base_url, presented, photo_jpeg("chelsea"))
            assert is_our_error(refused, 401, "unauthorized"), refused.text
    finally:
        local.stop()
    log = (tmp_path / "chalice.log").read_text(errors="replace")
    assert f"/images/{image_id}" in log  # the calls were logged: the check below means something
    for key in (good, revoked, unknown, malformed):
        # The secret follows the key id; it may itself hold "_" (token_urlsafe).
        secret = key.split("_", 2)[2] if key.startswith("ilk_") else key
        assert secret not in log, f"a key's secret is in the server's log: {key[:12]}…"
        assert secret not in local.log()


# --- the daily image quota -------------------------------------------------------------


def test_a_key_over_its_daily_images_gets_429_and_another_key_is_unaffected(
    tmp_path: Path, tiny_onnx_model: Path
) -> None:
    local = start(tmp_path, tiny_onnx_model, {"daily_image_quota": "2", "local_stream": "false"})
    try:
        # The quota is the key's, not its tenant's: both keys are of one tenant.
        busy = issue_key(local.data_dir, "busy")
        other = issue_key(local.data_dir, "busy")
        photos = [jpeg_variant(photo_jpeg("motorcycle"), 15_100 + n) for n in range(3)]
        answers = [upload(local.base_url, busy, photo) for photo in photos]
        assert [answer.status_code for answer in answers[:2]] == [202, 202]
        refused = answers[2]
        assert is_our_error(refused, 429, "too_many_requests"), refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        # The other key gets in, and the refused image is new to the tenant: not accepted.
        accepted = upload(local.base_url, other, photos[2])
        assert accepted.status_code == 202, accepted.text
    finally:
        local.stop()
