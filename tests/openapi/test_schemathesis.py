"""Schemathesis against the real `chalice local`, with the document the server serves.

Every documented operation that app.py routes gets the document's examples, schemathesis's
coverage cases (boundary values, wrong types, missing parameters, undeclared methods) and
a fixed number of generated requests, derandomized so that every run sends the same ones.
Every answer must be no 5xx, a documented status with a documented content type and
headers, and a body the document's schema accepts; a request the document calls invalid
must be refused. Every request carries the server's API key (key_header) but those whose
key schemathesis leaves out or spoils on purpose, which must be refused; and an operation
the key opened must refuse the same request without it or with a wrong one (ignored_auth).
"""

from __future__ import annotations

import json
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from chalicelib.http import page as web
from tests.openapi.routes import served_operations
from tests.openapi.stand_in import StandIn, keep_on_loopback
from tests.support import solid_image
from tests.system.chalice_local import ChaliceLocal

# Generated requests per operation, on top of the examples and the coverage cases.
EXAMPLES_PER_OPERATION = 10
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    ignored_auth,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261126,
        "generation": {
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "database": "none",
        },
        "suppress-health-check": ["all"],
        # chalice local's HTTP server has no TRACE handler (it answers 501 itself).
        "phases": {"coverage": {"unexpected-methods": ["GET", "PUT", "POST", "DELETE", "PATCH"]}},
    }
)

# Image bodies: small real images of each format (accepted) or any bytes (refused, 415).
IMAGE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/avif": "AVIF",
}


def image_bodies(*format_names: str) -> st.SearchStrategy[bytes]:
    sizes = st.tuples(st.integers(1, 48), st.integers(1, 48))
    images = st.builds(solid_image, st.sampled_from(format_names), sizes)
    return st.one_of(images, st.binary(max_size=200))


for _media_type, _format_name in IMAGE_FORMATS.items():
    schemathesis.openapi.media_type(_media_type, image_bodies(_format_name))
schemathesis.openapi.media_type("application/octet-stream", image_bodies(*IMAGE_FORMATS.values()))

# Operations app.py does not route yet are left out until it does: test_document.py
# names them. The schema is read from the file the server serves, as the first test
# checks: schemathesis's fixture-based loading (from_fixture, to read it from the running
# server) fails under pytest 9.2 ("'Function' object has no attribute '_nodeid'").
schema = schemathesis.openapi.from_path(web.OPENAPI_PATH, config=CONFIG).include(
    name=sorted(served_operations())
)


def test_the_server_serves_this_document(idle_server: ChaliceLocal) -> None:
    response = requests.get(f"{idle_server.base_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == json.loads(web.openapi_text())


@schema.parametrize()
def test_answers_conform_to_the_document(
    case: schemathesis.Case[Any], idle_server: ChaliceLocal, stand_in: StandIn
) -> None:
    # Assign only what changed: schemathesis judges an assigned part against the schema again.
    body = keep_on_loopback(case.body, stand_in)
    if body is not case.body:
        case.body = body
    query = keep_on_loopback(case.query, stand_in)
    if query is not case.query:
        case.query = query
    case.call_and_validate(
        base_url=idle_server.base_url,
        headers=key_header(case, idle_server),
        checks=CHECKS,
        timeout=15,
    )


def key_header(case: schemathesis.Case[Any], server: ChaliceLocal) -> dict[str, str] | None:
    """The server's API key, for every case but those whose Authorization header
    schemathesis left out or spoiled on purpose (negative cases of the security scheme).
    Given at the call: the document's examples and coverage cases are made before any
    server exists."""
    if case.operation.schema.is_security_param_negated(case):
        return None
    return {"Authorization": f"Bearer {server.api_key}"}
