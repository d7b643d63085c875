"""API keys on the deployed stack: the check runs in the API's own function behind API
Gateway (a Chalice middleware, no authorizer), so what `chalice local` answers, the
deployed API answers too, with keys read from the stage's ImageLabelIndex.

The keys are made in the emulator's table as `imagelabeller keys create --stage` makes
them on AWS (conftest.py `keys`): two tenants, `owner` and `intruder`, and one revoked
key of `owner`'s.
"""

from __future__ import annotations

import uuid

import requests

from tests.rehearsal.conftest import SETTINGS, Deployed, api_base_url
from tests.support import PHOTO_FILES, LoopbackServer, solid_image
from tests.system import access_table
from tests.system.access_table import Keys
from tests.system.client import ApiClient

AUTHENTICATE = 'Bearer realm="imagelabeller"'


def test_keyless_requests_are_refused_by_the_deployed_api(
    first_deploy: Deployed, photos: LoopbackServer
) -> None:
    base = api_base_url(first_deploy)
    photo = photos.url(f"/{PHOTO_FILES['coffee']}")
    for response in (
        requests.post(f"{base}/images", json={"url": photo}, timeout=30),
        requests.post(
            f"{base}/images",
            data=solid_image(size=(41, 29)),
            headers={"Content-Type": "image/png"},
            timeout=30,
        ),
        requests.get(f"{base}/images/{uuid.uuid4()}", timeout=30),
    ):
        assert response.status_code == 401, (response.request.url, response.text)
        assert response.headers["WWW-Authenticate"] == AUTHENTICATE
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "unauthorized"
    assert requests.get(f"{base}/health", timeout=30).status_code == 200


def test_every_route_answers_each_kind_of_caller_as_the_access_table_says(
    first_deploy: Deployed, photos: LoopbackServer, keys: Keys
) -> None:
    """Every route x {no key, bad key, revoked key, another tenant's key, the owner's key}
    (tests/system/access_table.py), with the legacy routes as the deployed stage has them."""
    base = api_base_url(first_deploy)
    photo = photos.url(f"/{PHOTO_FILES['coffee']}")
    owner = ApiClient(base, api_key=keys.own)
    image_id = owner.submit_url(photo)
    finished = owner.wait_until_finished(image_id)
    assert finished["status"] == "CLASSIFIED", finished

    wrong = access_table.run(base, keys, image_id, photo, legacy_open=SETTINGS.legacy_routes_open)

    assert wrong == []
