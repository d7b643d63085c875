"""Who may do what, as a table: every route crossed with the five kinds of caller (no key,
a malformed or unknown key, a revoked key, another tenant's key, the owner's key), and
the statuses each must get. Run against `chalice local` (tests/system/test_access.py)
and against the deployed stack in the rehearsal, with the same table.

The owner's image (`image_id`) must be CLASSIFIED before the table runs: relabel then
answers 202 for its owner. The rows run in order, DELETE last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import requests

from tests.support import solid_image

CALLERS = ("no key", "bad key", "revoked key", "other tenant", "own key")
BAD_KEY = "ilk_0123456789abcdef_" + "x" * 43
REFUSED = frozenset({401})
NOT_FOUND = frozenset({404})


@dataclass(frozen=True)
class Keys:
    own: str
    other: str
    revoked: str

    def header(self, caller: str) -> dict[str, str]:
        key = {
            "no key": None,
            "bad key": BAD_KEY,
            "revoked key": self.revoked,
            "other tenant": self.other,
            "own key": self.own,
        }[caller]
        return {} if key is None else {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class Row:
    """One route: how to call it for the image, and what its owner gets."""

    name: str
    call: Callable[[str, str, dict[str, str]], requests.Response]  # (base, image id, headers)
    own: frozenset[int]
    # What another tenant's key gets: 404 for an image's own routes; a route that names no
    # image succeeds for anyone with a key (and shows only their own images).
    other: frozenset[int] = NOT_FOUND
    # The original's routes, which a stage may keep open (no key: the legacy tenant).
    legacy: bool = False


def _get(path: str) -> Callable[[str, str, dict[str, str]], requests.Response]:
    def call(base: str, image_id: str, headers: dict[str, str]) -> requests.Response:
        return requests.get(base + path.format(id=image_id), headers=headers, timeout=30)

    return call


def _submit_upload(base: str, image_id: str, headers: dict[str, str]) -> requests.Response:
    image = solid_image(size=(40, 30))  # the same bytes every time: 202 once, then 200
    headers = {**headers, "Content-Type": "image/png"}
    return requests.post(f"{base}/images", data=image, headers=headers, timeout=30)


def _submit_batch(photo_url: str) -> Callable[[str, str, dict[str, str]], requests.Response]:
    def call(base: str, image_id: str, headers: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{base}/images/batch", json={"urls": [photo_url]}, headers=headers, timeout=60
        )

    return call


def _start_upload(base: str, image_id: str, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{base}/uploads", json={"content_type": "image/png"}, headers=headers, timeout=30
    )


def _relabel(base: str, image_id: str, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{base}/images/{image_id}/relabel", headers=headers, timeout=30)


def _delete(base: str, image_id: str, headers: dict[str, str]) -> requests.Response:
    return requests.delete(f"{base}/images/{image_id}", headers=headers, timeout=30)


def rows(photo_url: str) -> list[Row]:
    """Every route of the API; `photo_url` is an image the server may fetch."""
    anyone = frozenset({200})
    return [
        Row("GET /health", _get("/health"), anyone, anyone),
        Row("GET /", _get("/"), anyone, anyone),
        Row("GET /openapi.json", _get("/openapi.json"), anyone, anyone),
        Row("POST /images", _submit_upload, frozenset({200, 202}), frozenset({200, 202})),
        Row("POST /images/batch", _submit_batch(photo_url), anyone, anyone),
        Row("POST /uploads", _start_upload, frozenset({201}), frozenset({201})),
        Row("GET /labels/{name}/images", _get("/labels/espresso/images"), anyone, anyone),
        Row("GET /images/{id}", _get("/images/{id}"), anyone),
        Row(
            "GET /submit-image",
            _get("/submit-image?url=" + quote(photo_url, safe="")),
            anyone,
            anyone,
            legacy=True,
        ),
        Row("GET /get-image-label", _get("/get-image-label?imageId={id}"), anyone, legacy=True),
        Row("POST /images/{id}/relabel", _relabel, frozenset({202})),
        Row("DELETE /images/{id}", _delete, frozenset({204})),
    ]


OPEN_ROUTES = {"GET /health", "GET /", "GET /openapi.json"}


def expected(row: Row, caller: str, legacy_open: bool) -> frozenset[int]:
    if row.name in OPEN_ROUTES:
        return row.own
    if caller == "own key":
        return row.own
    if caller == "other tenant":
        return row.other
    if caller == "no key" and row.legacy and legacy_open:
        # The legacy tenant's: it sees none of the owner's images.
        return row.other
    return REFUSED


def run(base_url: str, keys: Keys, image_id: str, photo_url: str, legacy_open: bool) -> list[str]:
    """Every route x caller; the cells that got what they should not (empty: all good).
    The owner's key goes last on each row, so DELETE removes the image only at the end."""
    base = base_url.rstrip("/")
    wrong = []
    for row in rows(photo_url):
        for caller in CALLERS:
            response = row.call(base, image_id, keys.header(caller))
            want = expected(row, caller, legacy_open)
            if response.status_code not in want:
                wrong.append(
                    f"{row.name} with {caller}: {response.status_code}, expected "
                    f"{sorted(want)}: {response.text[:200]}"
                )
            elif response.status_code == 401 and not _is_our_401(response):
                wrong.append(f"{row.name} with {caller}: 401 without our error shape")
    return wrong


def _is_our_401(response: requests.Response) -> bool:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(code == "unauthorized" and "Bearer" in response.headers.get("WWW-Authenticate", ""))
