"""The answers generated requests rarely reach (a labelled record, a relabel, a delete, a
page of search results, an upload, a batch, a refused key, a key over its rate), each
checked against the document with the same checks schemathesis runs. Every call carries
the server's API key but the upload form (authorised by its fields) and the ones that
show what a caller without one gets. A step whose route app.py does not have yet is
skipped."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.http import page as web
from tests.openapi.routes import served
from tests.openapi.stand_in import StandIn
from tests.support import EXPECTED_TOP_LABELS, photo_jpeg, photo_png, poll
from tests.system.chalice_local import ChaliceLocal

DOCUMENT = schemathesis.openapi.from_path(web.OPENAPI_PATH)
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TIMEOUT = 15
LABEL_SECONDS = 60


def conforms(label: str, response: requests.Response, status: int, **path: str) -> Any:
    """Check `response` against the document's `label` operation; its JSON body, if any."""
    assert response.status_code == status, response.text
    method, template = label.split(" ", 1)
    case = DOCUMENT[template][method].Case(path_parameters=path)
    case.validate_response(response, checks=CONFORMANCE)
    return response.json() if response.content else None


def require(*labels: str) -> None:
    missing = [label for label in labels if not served(label)]
    if missing:
        pytest.skip(f"not routed in app.py yet: {', '.join(missing)}")


def keyed(server: ChaliceLocal) -> requests.Session:
    """A session whose every call carries the server's API key."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {server.api_key}"
    return http


def upload(
    http: requests.Session, base_url: str, data: bytes, content_type: str
) -> requests.Response:
    return http.post(
        f"{base_url}/images", data=data, headers={"Content-Type": content_type}, timeout=TIMEOUT
    )


def labelled(http: requests.Session, base_url: str, image_id: str) -> requests.Response:
    response: requests.Response = poll(
        lambda: http.get(f"{base_url}/images/{image_id}", timeout=TIMEOUT),
        lambda answer: answer.json().get("status") != "NOT_CLASSIFIED",
        timeout=LABEL_SECONDS,
    )
    return response


def test_a_labelled_image_and_its_legacy_label_match_the_document(
    labelling_server: ChaliceLocal,
) -> None:
    base = labelling_server.base_url
    http = keyed(labelling_server)
    photo = photo_png("coffee")
    record = conforms("POST /images", upload(http, base, photo, "image/png"), 202)
    image_id = record["image_id"]

    finished = conforms(
        "GET /images/{image_id}", labelled(http, base, image_id), 200, image_id=image_id
    )
    assert finished["status"] == "CLASSIFIED"
    assert finished["labels"][0]["name"] in EXPECTED_TOP_LABELS["coffee"]

    top_one = http.get(f"{base}/images/{image_id}", params={"top_k": 1}, timeout=TIMEOUT)
    assert len(conforms("GET /images/{image_id}", top_one, 200, image_id=image_id)["labels"]) == 1

    again = conforms("POST /images", upload(http, base, photo, "image/png"), 200)
    assert again["image_id"] == image_id

    legacy = http.get(f"{base}/get-image-label", params={"imageId": image_id}, timeout=TIMEOUT)
    names = conforms("GET /get-image-label", legacy, 200)["ImageLabel"].split(", ")
    assert names[0] in EXPECTED_TOP_LABELS["coffee"]


def test_a_delivered_callback_shows_in_the_record_as_documented(
    labelling_server: ChaliceLocal, stand_in: StandIn
) -> None:
    base = labelling_server.base_url
    http = keyed(labelling_server)
    submitted = http.post(
        f"{base}/images",
        params={"callback_url": stand_in.callback_url},
        data=photo_jpeg("coffee", quality=80),
        headers={"Content-Type": "image/jpeg"},
        timeout=TIMEOUT,
    )
    record = conforms("POST /images", submitted, 202)
    if "webhook" not in record:
        pytest.skip("callbacks are not recorded yet")
    image_id = record["image_id"]
    delivered: requests.Response = poll(
        lambda: http.get(f"{base}/images/{image_id}", timeout=TIMEOUT),
        lambda answer: answer.json().get("webhook", {}).get("status") != "PENDING",
        timeout=LABEL_SECONDS,
    )
    finished = conforms("GET /images/{image_id}", delivered, 200, image_id=image_id)
    assert finished["webhook"]["status"] == "DELIVERED", finished["webhook"]


def test_relabel_search_and_delete_match_the_document(labelling_server: ChaliceLocal) -> None:
    require(
        "POST /images/{image_id}/relabel", "GET /labels/{name}/images", "DELETE /images/{image_id}"
    )
    base = labelling_server.base_url
    http = keyed(labelling_server)
    image_id = conforms(
        "POST /images", upload(http, base, photo_jpeg("chelsea"), "image/jpeg"), 202
    )["image_id"]
    top = labelled(http, base, image_id).json()["labels"][0]["name"]

    search = http.get(f"{base}/labels/{top}/images", params={"limit": 5}, timeout=TIMEOUT)
    page = conforms("GET /labels/{name}/images", search, 200, name=top)
    assert image_id in [hit["image_id"] for hit in page["images"]]

    relabel = http.post(f"{base}/images/{image_id}/relabel", timeout=TIMEOUT)
    relabelled = conforms("POST /images/{image_id}/relabel", relabel, 202, image_id=image_id)
    assert relabelled["previous"]["labels"][0]["name"] == top
    labelled(http, base, image_id)

    deleted = http.delete(f"{base}/images/{image_id}", timeout=TIMEOUT)
    conforms("DELETE /images/{image_id}", deleted, 204, image_id=image_id)
    gone = http.get(f"{base}/images/{image_id}", timeout=TIMEOUT)
    conforms("GET /images/{image_id}", gone, 404, image_id=image_id)


def test_relabelling_an_image_not_yet_labelled_is_a_documented_conflict(
    idle_server: ChaliceLocal,
) -> None:
    require("POST /images/{image_id}/relabel")
    base = idle_server.base_url
    http = keyed(idle_server)
    image_id = conforms(
        "POST /images", upload(http, base, photo_jpeg("motorcycle"), "image/jpeg"), 202
    )["image_id"]
    relabel = http.post(f"{base}/images/{image_id}/relabel", timeout=TIMEOUT)
    conforms("POST /images/{image_id}/relabel", relabel, 409, image_id=image_id)
    legacy = http.get(f"{base}/get-image-label", params={"imageId": image_id}, timeout=TIMEOUT)
    assert conforms("GET /get-image-label", legacy, 200) == {"ImageLabel": "NOT_CLASSIFIED"}


def post_form(ticket: dict[str, Any], data: bytes, fields: dict[str, str] | None = None) -> Any:
    """The form an upload ticket asks for: its fields, then the image as `file`."""
    return requests.request(
        ticket["method"],
        ticket["upload_url"],
        data=ticket["fields"] if fields is None else fields,
        files={"file": ("image", data, "application/octet-stream")},
        timeout=TIMEOUT,
    )


def test_an_upload_through_an_upload_url_matches_the_document(
    labelling_server: ChaliceLocal,
) -> None:
    require("POST /uploads", "POST /uploads/{image_id}")
    base = labelling_server.base_url
    http = keyed(labelling_server)
    started = http.post(f"{base}/uploads", json={"content_type": "image/png"}, timeout=TIMEOUT)
    ticket = conforms("POST /uploads", started, 201)
    image_id = ticket["image_id"]
    before = http.get(f"{base}/images/{image_id}", timeout=TIMEOUT)
    conforms("GET /images/{image_id}", before, 404, image_id=image_id)

    posted = post_form(ticket, photo_png("chelsea"))
    record = conforms("POST /uploads/{image_id}", posted, 202, image_id=image_id)
    assert record["image_id"] == image_id
    finished = conforms(
        "GET /images/{image_id}", labelled(http, base, image_id), 200, image_id=image_id
    )
    assert finished["labels"][0]["name"] in EXPECTED_TOP_LABELS["chelsea"]

    unsigned = {name: value for name, value in ticket["fields"].items() if name != "signature"}
    forged = post_form(ticket, photo_png("chelsea"), unsigned)
    conforms("POST /uploads/{image_id}", forged, 403, image_id=image_id)


def test_an_upload_over_the_size_limit_is_a_documented_413(idle_server: ChaliceLocal) -> None:
    require("POST /uploads", "POST /uploads/{image_id}")
    base = idle_server.base_url
    http = keyed(idle_server)
    ticket = conforms("POST /uploads", http.post(f"{base}/uploads", timeout=TIMEOUT), 201)
    oversized = post_form(ticket, b"\0" * (10 * 1024 * 1024 + 1))
    conforms("POST /uploads/{image_id}", oversized, 413, image_id=ticket["image_id"])
    missing = http.get(f"{base}/images/{ticket['image_id']}", timeout=TIMEOUT)
    conforms("GET /images/{image_id}", missing, 404, image_id=ticket["image_id"])


def test_an_upload_that_is_not_an_image_is_a_documented_failed_record(
    idle_server: ChaliceLocal,
) -> None:
    require("POST /uploads", "POST /uploads/{image_id}")
    base = idle_server.base_url
    http = keyed(idle_server)
    ticket = conforms("POST /uploads", http.post(f"{base}/uploads", timeout=TIMEOUT), 201)
    posted = post_form(ticket, b"not an image")
    record = conforms("POST /uploads/{image_id}", posted, 202, image_id=ticket["image_id"])
    assert record["status"] == "FAILED"
    assert record["error"]


def test_a_batch_with_good_and_bad_urls_matches_the_document(
    idle_server: ChaliceLocal, stand_in: StandIn
) -> None:
    require("POST /images/batch")
    urls = [
        f"{stand_in.base_url}/photo.png",
        f"{stand_in.base_url}/missing",
        "file:///etc/passwd",
    ]
    answer = keyed(idle_server).post(
        f"{idle_server.base_url}/images/batch", json={"urls": urls}, timeout=30
    )
    results = conforms("POST /images/batch", answer, 200)["results"]
    assert [result["url"] for result in results] == urls
    assert results[0]["status"] in (200, 202)
    assert [result["status"] for result in results[1:]] == [422, 400]


def test_the_legacy_submit_route_matches_the_document_with_a_key_and_without(
    idle_server: ChaliceLocal, stand_in: StandIn
) -> None:
    """The local stage keeps the original's routes open: without a key they are the legacy
    tenant's, as the document's optional security says."""
    params = {"url": f"{stand_in.base_url}/photo.png"}
    url = f"{idle_server.base_url}/submit-image"
    with_key = keyed(idle_server).get(url, params=params, timeout=TIMEOUT)
    conforms("GET /submit-image", with_key, 200)
    without = requests.get(url, params=params, timeout=TIMEOUT)
    conforms("GET /submit-image", without, 200)
    assert without.json()["ImageId"] != with_key.json()["ImageId"]  # two tenants, two records


@pytest.mark.parametrize("authorization", [None, "Bearer ilk_0123456789abcdef_" + "x" * 43])
def test_a_request_without_a_valid_key_is_a_documented_401(
    idle_server: ChaliceLocal, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    base = idle_server.base_url
    image_id = "00000000-0000-4000-8000-000000000000"
    read = requests.get(f"{base}/images/{image_id}", headers=headers, timeout=TIMEOUT)
    error = conforms("GET /images/{image_id}", read, 401, image_id=image_id)["error"]
    assert error["code"] == "unauthorized"
    assert read.headers["WWW-Authenticate"].startswith("Bearer ")
    submit = requests.post(
        f"{base}/images",
        data=photo_png("coffee"),
        headers={**headers, "Content-Type": "image/png"},
        timeout=TIMEOUT,
    )
    conforms("POST /images", submit, 401)


def test_a_key_over_its_rate_is_a_documented_429(throttled_server: ChaliceLocal) -> None:
    http = keyed(throttled_server)
    image_id = "00000000-0000-4000-8000-000000000000"
    url = f"{throttled_server.base_url}/images/{image_id}"
    conforms("GET /images/{image_id}", http.get(url, timeout=TIMEOUT), 404, image_id=image_id)
    second = http.get(url, timeout=TIMEOUT)
    error = conforms("GET /images/{image_id}", second, 429, image_id=image_id)["error"]
    assert error["code"] == "too_many_requests"
    assert int(second.headers["Retry-After"]) >= 1
