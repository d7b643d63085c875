"""The routes and the stream handler through Chalice's test client (local stage).

`client` runs the tiny stand-in graph (fast); `labelling_client` the real Lite0, for the
tests that check label names (espresso, the cat) and so are marked `model`."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from chalice.test import Client

from app import app
from chalicelib.adapters.sqlite import SqliteChangeLog
from chalicelib.adapters.webhooks import SIGNATURE_HEADER, verify
from chalicelib.bootstrap import components
from chalicelib.config import DEFAULT_MODEL
from chalicelib.local.queue import LocalQueuePoller
from chalicelib.local.stream import LocalStreamPoller, SqliteStreamSource
from tests.support import (
    LoopbackServer,
    PostReceiver,
    issue_key,
    loopback_server,
    photo_jpeg,
    photo_png,
    solid_image,
    with_key,
)

JSON = {"Content-Type": "application/json"}


def local_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The local stage, every call carrying an API key of tenant `tests`."""
    monkeypatch.setenv("IMAGELABELLER_DATA_DIR", str(tmp_path / "data"))
    key = issue_key(tmp_path / "data")
    with Client(app, stage_name="local") as chalice_client:
        yield with_key(chalice_client, key)


@pytest.fixture
def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_env: Path
) -> Iterator[Client]:
    """The local stage on the tiny stand-in graph: for every test that holds whatever the
    labels are called (statuses, records, errors, storage, callbacks)."""
    yield from local_stage(tmp_path, monkeypatch)


@pytest.fixture
def labelling_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exported_models: dict[str, Path]
) -> Iterator[Client]:
    """The local stage on the real Lite0, for the tests that check what the labels say."""
    monkeypatch.setenv("IMAGELABELLER_MODEL", DEFAULT_MODEL)
    monkeypatch.setenv("IMAGELABELLER_MODEL_PATH", str(exported_models[DEFAULT_MODEL]))
    yield from local_stage(tmp_path, monkeypatch)


def body(response: Any) -> Any:
    return json.loads(response.body)


def submit_json(client: Client, payload: Any) -> Any:
    return client.http.post("/images", headers=JSON, body=json.dumps(payload))


def upload(client: Client, data: bytes, content_type: str = "image/png") -> Any:
    return client.http.post("/images", headers={"Content-Type": content_type}, body=data)


def deliver_stream(client: Client) -> None:
    """Hand everything on the change log to the stream handler, as Lambda would."""
    database = components().database
    assert database is not None
    stream = LocalStreamPoller(
        SqliteStreamSource(SqliteChangeLog(database), "arn:test"),
        lambda event, context: client.lambda_.invoke("label_new_images", event),
        batch_size=16,
        poll_seconds=0.01,
    )
    while stream.deliver_pending():
        pass


def deliver_callbacks(client: Client) -> None:
    """Hand every queued callback to the delivery handler, as SQS's event source would."""
    queue = components().local_callback_queue
    assert queue is not None
    poller = LocalQueuePoller(
        queue,
        lambda event, context: client.lambda_.invoke("deliver_callbacks", event),
        workers=1,
        visibility_seconds=60,
        poll_seconds=0.01,
    )
    while poller.deliver_one():
        pass


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    error = body(response)["error"]
    assert error["code"] == code
    assert error["message"]


def test_submit_by_url_answers_202_with_id_and_location(
    client: Client, photo_server: LoopbackServer
) -> None:
    url = photo_server.serve("/coffee.png", photo_png("coffee"))
    response = submit_json(client, {"url": url})
    assert response.status_code == 202
    record = body(response)
    assert record["status"] == "NOT_CLASSIFIED"
    assert record["source_url"] == url
    assert response.headers["Location"] == f"/images/{record['image_id']}"


def test_uploaded_image_is_labelled_by_the_stream_handler(labelling_client: Client) -> None:
    image_id = body(upload(labelling_client, photo_jpeg("coffee"), "image/jpeg"))["image_id"]
    assert body(labelling_client.http.get(f"/images/{image_id}"))["status"] == "NOT_CLASSIFIED"
    deliver_stream(labelling_client)
    record = body(labelling_client.http.get(f"/images/{image_id}"))
    assert record["status"] == "CLASSIFIED"
    assert record["labels"][0]["name"] == "espresso"
    assert len(record["labels"]) == 5
    assert record["model"] == "efficientnet-lite0/onnx"
    assert record["image"]["format"] == "JPEG"


def test_legacy_routes_keep_the_original_contract(
    labelling_client: Client, photo_server: LoopbackServer
) -> None:
    url = photo_server.serve("/cat.png", photo_png("chelsea"))
    submitted = labelling_client.http.get(f"/submit-image?url={url}")
    assert submitted.status_code == 200
    image_id = body(submitted)["ImageId"]
    assert set(body(submitted)) == {"ImageId"}
    pending = body(labelling_client.http.get(f"/get-image-label?imageId={image_id}"))
    assert pending == {"ImageLabel": "NOT_CLASSIFIED"}
    deliver_stream(labelling_client)
    label = body(labelling_client.http.get(f"/get-image-label?imageId={image_id}"))["ImageLabel"]
    names = label.split(", ")
    assert len(names) == 5
    assert names[0] in {"tiger cat", "Egyptian cat", "tabby"}


def test_image_that_fails_labelling_reads_failed_with_its_reason(client: Client) -> None:
    image_id = body(upload(client, photo_png("coffee")))["image_id"]
    store_path = components().settings.data_dir / "images" / image_id
    store_path.write_bytes(photo_jpeg("coffee")[:3000])  # damaged after it was accepted
    deliver_stream(client)
    record = body(client.http.get(f"/images/{image_id}"))
    assert record["status"] == "FAILED"
    assert "truncated" in record["error"] or "damaged" in record["error"]
    legacy = body(client.http.get(f"/get-image-label?imageId={image_id}"))
    assert legacy == {"ImageLabel": "FAILED"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_request"),
        ("", "invalid_request"),
        ("[]", "invalid_request"),
        ("{}", "invalid_request"),
        ('{"url": 42}', "invalid_request"),
        ('{"url": "ftp://example.com/a.jpg"}', "url_not_allowed"),
        ('{"url": "file:///etc/passwd"}', "url_not_allowed"),
    ],
)
def test_bad_json_submits_are_400s(client: Client, raw: str, code: str) -> None:
    assert_error(client.http.post("/images", headers=JSON, body=raw), 400, code)


DEEPLY_NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("path", ["/images", "/images/batch", "/uploads"])
@pytest.mark.parametrize("raw", [DEEPLY_NESTED, '{"url": ' + DEEPLY_NESTED + "}"])
def test_deeply_nested_json_bodies_are_400s(client: Client, path: str, raw: str) -> None:
    assert_error(client.http.post(path, headers=JSON, body=raw), 400, "invalid_request")


def test_url_that_is_not_an_image_is_415(client: Client, photo_server: LoopbackServer) -> None:
    url = photo_server.serve("/page.html", b"<html>hello</html>", "text/html")
    assert_error(submit_json(client, {"url": url}), 415, "not_an_image")


def test_url_that_answers_404_is_422(client: Client, photo_server: LoopbackServer) -> None:
    assert_error(submit_json(client, {"url": photo_server.url("/gone.jpg")}), 422, "fetch_failed")


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"definitely not an image", "image/jpeg", 415, "not_an_image"),
        (photo_jpeg("coffee")[:20000], "image/jpeg", 415, "not_an_image"),
        (solid_image("PPM"), "image/x-portable-pixmap", 415, "unsupported_image_format"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
        (b"", "image/png", 415, "not_an_image"),
    ],
)
def test_bad_uploads_are_4xx(
    client: Client, data: bytes, content_type: str, status: int, code: str
) -> None:
    assert_error(upload(client, data, content_type), status, code)


def test_upload_over_the_size_limit_is_413(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGELABELLER_MAX_IMAGE_BYTES", "1000")
    assert_error(upload(client, photo_png("coffee")), 413, "image_too_large")


@pytest.mark.parametrize("image_id", ["nope", "00000000-0000-4000-8000-000000000000"])
def test_unknown_image_is_404(client: Client, image_id: str) -> None:
    assert_error(client.http.get(f"/images/{image_id}"), 404, "not_found")
    assert_error(client.http.get(f"/get-image-label?imageId={image_id}"), 404, "not_found")


@pytest.mark.parametrize("path", ["/submit-image", "/get-image-label", "/submit-image?url="])
def test_legacy_routes_need_their_parameter(client: Client, path: str) -> None:
    assert_error(client.http.get(path), 400, "invalid_request")


def test_wrong_method_answers_our_error_shape(client: Client) -> None:
    assert_error(client.http.put("/images/nope"), 405, "method_not_allowed")


def test_bad_requests_leave_earlier_records_intact(client: Client) -> None:
    image_id = body(upload(client, photo_png("coffee")))["image_id"]
    before = body(client.http.get(f"/images/{image_id}"))
    for raw in ("{not json", '{"url": "file:///etc/passwd"}'):
        client.http.post("/images", headers=JSON, body=raw)
    upload(client, b"junk", "image/png")
    assert body(client.http.get(f"/images/{image_id}")) == before


def test_labels_can_be_cut_by_count_and_score(labelling_client: Client) -> None:
    image_id = body(upload(labelling_client, photo_png("coffee")))["image_id"]
    deliver_stream(labelling_client)
    every = body(labelling_client.http.get(f"/images/{image_id}?top_k=10"))["labels"]
    assert len(every) == 10
    assert [
        label["name"] for label in body(labelling_client.http.get(f"/images/{image_id}"))["labels"]
    ] == [label["name"] for label in every[:5]]
    assert len(body(labelling_client.http.get(f"/images/{image_id}?top_k=2"))["labels"]) == 2
    confident = body(labelling_client.http.get(f"/images/{image_id}?top_k=10&min_score=0.5"))[
        "labels"
    ]
    assert [label["name"] for label in confident] == ["espresso"]


@pytest.mark.parametrize(
    "query",
    [
        "top_k=0",
        "top_k=11",
        "top_k=two",
        "top_k=2.5",
        "min_score=-0.1",
        "min_score=1.5",
        "min_score=nan",
    ],
)
def test_label_view_bounds_are_checked(client: Client, query: str) -> None:
    image_id = body(upload(client, photo_png("coffee")))["image_id"]
    assert_error(client.http.get(f"/images/{image_id}?{query}"), 400, "invalid_request")


def test_the_same_bytes_are_stored_and_labelled_once(labelling_client: Client) -> None:
    first = upload(labelling_client, photo_png("coffee"))
    again = upload(labelling_client, photo_png("coffee"))
    assert (first.status_code, again.status_code) == (202, 200)
    assert body(again)["image_id"] == body(first)["image_id"]
    deliver_stream(labelling_client)
    third = upload(labelling_client, photo_png("coffee"))
    assert third.status_code == 200
    assert body(third)["status"] == "CLASSIFIED"
    assert body(third)["labels"][0]["name"] == "espresso"


def test_the_same_bytes_after_a_failure_are_labelled_again(client: Client) -> None:
    image_id = body(upload(client, photo_png("coffee")))["image_id"]
    store_path = components().settings.data_dir / "images" / image_id
    original = store_path.read_bytes()
    store_path.write_bytes(b"damaged")
    deliver_stream(client)
    assert body(client.http.get(f"/images/{image_id}"))["status"] == "FAILED"
    store_path.write_bytes(original)
    retried = upload(client, photo_png("coffee"))
    assert retried.status_code == 202
    assert body(retried)["image_id"] == image_id
    assert body(retried)["previous"]["status"] == "FAILED"
    deliver_stream(client)
    assert body(client.http.get(f"/images/{image_id}"))["status"] == "CLASSIFIED"


def test_deleted_image_is_gone_everywhere(labelling_client: Client) -> None:
    image_id = body(upload(labelling_client, photo_png("coffee")))["image_id"]
    deliver_stream(labelling_client)
    response = labelling_client.http.delete(f"/images/{image_id}")
    assert (response.status_code, response.body) == (204, b"")
    assert_error(labelling_client.http.get(f"/images/{image_id}"), 404, "not_found")
    assert body(labelling_client.http.get("/labels/espresso/images"))["images"] == []
    assert not (components().settings.data_dir / "images" / image_id).exists()
    assert_error(labelling_client.http.delete(f"/images/{image_id}"), 404, "not_found")
    assert_error(labelling_client.http.delete("/images/not-an-id"), 404, "not_found")


def test_relabel_labels_again_and_keeps_the_previous_result(labelling_client: Client) -> None:
    image_id = body(upload(labelling_client, photo_png("coffee")))["image_id"]
    assert_error(labelling_client.http.post(f"/images/{image_id}/relabel"), 409, "conflict")
    deliver_stream(labelling_client)
    first = body(labelling_client.http.get(f"/images/{image_id}"))
    response = labelling_client.http.post(f"/images/{image_id}/relabel")
    assert response.status_code == 202
    pending = body(response)
    assert (pending["status"], pending["labels"]) == ("NOT_CLASSIFIED", [])
    assert pending["previous"] == {
        "status": "CLASSIFIED",
        "labels": first["labels"],
        "model": first["model"],
        "labelled_at": first["labelled_at"],
    }
    deliver_stream(labelling_client)
    again = body(labelling_client.http.get(f"/images/{image_id}"))
    assert again["status"] == "CLASSIFIED"
    assert again["labels"][0]["name"] == "espresso"
    assert again["previous"]["labelled_at"] == first["labelled_at"]
    assert_error(
        labelling_client.http.post("/images/00000000-0000-4000-8000-000000000000/relabel"),
        404,
        "not_found",
    )


def test_search_by_label_best_first_in_pages(labelling_client: Client) -> None:
    ids = [
        body(upload(labelling_client, photo_jpeg("coffee", quality)))["image_id"]
        for quality in (60, 90)
    ]
    cat = body(upload(labelling_client, photo_png("chelsea")))["image_id"]
    deliver_stream(labelling_client)
    scores = {
        image_id: body(labelling_client.http.get(f"/images/{image_id}"))["labels"][0]["score"]
        for image_id in ids
    }
    first = body(labelling_client.http.get("/labels/espresso/images?limit=1"))
    assert first["label"] == "espresso" and len(first["images"]) == 1 and first["next_token"]
    second = body(
        labelling_client.http.get(
            f"/labels/espresso/images?limit=1&next_token={first['next_token']}"
        )
    )
    found = first["images"] + second["images"]
    assert [hit["image_id"] for hit in found] == sorted(ids, key=lambda i: -scores[i])
    assert [hit["score"] for hit in found] == sorted(scores.values(), reverse=True)
    assert second["next_token"] is None
    cats = body(labelling_client.http.get("/labels/Tiger%20Cat/images"))
    assert cats["label"] == "Tiger Cat"
    assert cat in [hit["image_id"] for hit in cats["images"]]
    assert body(labelling_client.http.get("/labels/unicorn/images")) == {
        "label": "unicorn",
        "images": [],
        "next_token": None,
    }


NESTED_TOKEN = base64.urlsafe_b64encode(DEEPLY_NESTED.encode()).decode()


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=x", "next_token=garbage", f"next_token={NESTED_TOKEN}"]
)
def test_search_refuses_bad_paging(client: Client, query: str) -> None:
    assert_error(client.http.get(f"/labels/espresso/images?{query}"), 400, "invalid_request")


def test_batch_answers_each_url_on_its_own(
    labelling_client: Client, photo_server: LoopbackServer
) -> None:
    coffee = photo_server.serve("/coffee.png", photo_png("coffee"))
    cat = photo_server.serve("/cat.png", photo_png("chelsea"))
    known = body(upload(labelling_client, photo_png("coffee")))["image_id"]
    urls = [coffee, "file:///etc/passwd", photo_server.url("/missing.png"), cat, ""]
    response = labelling_client.http.post(
        "/images/batch", headers=JSON, body=json.dumps({"urls": urls})
    )
    assert response.status_code == 200
    results = body(response)["results"]
    assert [result["url"] for result in results] == urls
    assert [result["status"] for result in results] == [200, 400, 422, 202, 400]
    assert results[0]["image"]["image_id"] == known  # the same bytes as the upload
    assert results[1]["error"]["code"] == "url_not_allowed"
    assert results[2]["error"]["code"] == "fetch_failed"
    assert results[4]["error"]["code"] == "invalid_request"
    deliver_stream(labelling_client)
    labelled = body(labelling_client.http.get(f"/images/{results[3]['image']['image_id']}"))
    assert labelled["labels"][0]["name"] in {"tiger cat", "Egyptian cat", "tabby"}


@pytest.mark.parametrize(
    "payload",
    [
        '{"urls": []}',
        '{"urls": "http://x"}',
        '{"urls": ["http://x", 42]}',
        "{}",
        "[1]",
        '{"urls": ' + json.dumps(["http://x"] * 11) + "}",
    ],
)
def test_batch_refuses_a_bad_body_as_a_whole(client: Client, payload: str) -> None:
    assert_error(
        client.http.post("/images/batch", headers=JSON, body=payload), 400, "invalid_request"
    )


def start_upload(client: Client, payload: Any = None) -> Any:
    raw = "" if payload is None else json.dumps(payload)
    return client.http.post("/uploads", headers=JSON, body=raw)


def post_upload(
    client: Client,
    upload_url: str,
    fields: dict[str, str],
    data: bytes,
    content_type: str = "image/png",
) -> Any:
    """The form POST an upload ticket asks for: its fields, then the image as `file`."""
    path = upload_url.split("://", 1)[1].split("/", 1)[1]
    form: list[tuple[str, str | tuple[str, bytes, str]]] = [*fields.items()]
    form.append(("file", ("image", data, content_type)))
    encoded, form_type = urllib3.encode_multipart_formdata(form)
    return client.http.post(f"/{path}", headers={"Content-Type": form_type}, body=encoded)


def test_direct_upload_registers_and_labels_the_image(labelling_client: Client) -> None:
    ticket = start_upload(labelling_client, {"content_type": "image/jpeg"})
    assert ticket.status_code == 201
    answer = body(ticket)
    assert answer["method"] == "POST"
    assert answer["upload_url"].endswith(f"/uploads/{answer['image_id']}")
    fields = answer["fields"]
    assert fields["key"] == f"uploads/tests/{answer['image_id']}"  # the tenant's
    assert fields["Content-Type"] == "image/jpeg"
    assert_error(labelling_client.http.get(f"/images/{answer['image_id']}"), 404, "not_found")
    stored = post_upload(labelling_client, answer["upload_url"], fields, photo_jpeg("coffee"))
    assert stored.status_code == 202
    assert body(stored)["image_id"] == answer["image_id"]
    deliver_stream(labelling_client)
    record = body(labelling_client.http.get(f"/images/{answer['image_id']}"))
    assert record["status"] == "CLASSIFIED"
    assert record["labels"][0]["name"] == "espresso"


def test_uploaded_bytes_that_are_no_image_end_failed_with_the_reason(client: Client) -> None:
    answer = body(start_upload(client))
    stored = post_upload(client, answer["upload_url"], answer["fields"], b"not an image")
    record = body(stored)
    assert (record["status"], record["image_id"]) == ("FAILED", answer["image_id"])
    assert "not_an_image" in record["error"]


def test_upload_forms_cannot_be_forged_or_reused_for_another_image(client: Client) -> None:
    answer = body(start_upload(client, {"content_type": "image/png"}))
    url, fields = answer["upload_url"], answer["fields"]
    other_id = "00000000-0000-4000-8000-000000000000"
    refused = [
        (url, {**fields, "signature": "0" + fields["signature"]}),
        (url.replace(answer["image_id"], other_id), fields),
        (url, {**fields, "key": f"uploads/{other_id}"}),
        (url, {**fields, "Content-Type": "image/jpeg"}),
        (url, {**fields, "expires": "1"}),
        (url, {name: value for name, value in fields.items() if name != "signature"}),
    ]
    for target, form in refused:
        answer_to = post_upload(client, target, form, photo_png("coffee"))
        assert_error(answer_to, 403, "upload_not_allowed")
    assert_error(client.http.get(f"/images/{answer['image_id']}"), 404, "not_found")


def test_an_upload_form_over_the_size_limit_is_refused_with_413_and_nothing_stored(
    client: Client,
) -> None:
    limit = 10 * 1024 * 1024  # the local stage's IMAGELABELLER_MAX_IMAGE_BYTES
    answer = body(start_upload(client, {"content_type": "image/png"}))
    image = photo_png("coffee")
    over = image + b"\0" * (limit + 1 - len(image))  # an image, with trailing bytes
    for data in (over, over + b"\0" * 100_000):  # the file over; the whole form over too
        refused = post_upload(client, answer["upload_url"], answer["fields"], data)
        assert_error(refused, 413, "image_too_large")
    assert_error(client.http.get(f"/images/{answer['image_id']}"), 404, "not_found")
    images = components().settings.data_dir / "images"
    assert [path.name for path in images.rglob("*") if path.is_file()] == [".upload-secret"]
    stored = post_upload(client, answer["upload_url"], answer["fields"], image)
    assert stored.status_code == 202  # the same form still takes an image within the limit


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("image/png", None),  # the bytes sent as they are: the retired PUT's way
        ("multipart/form-data; boundary=x", b"--x\r\nno headers here--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x--\r\n"),  # no file field
    ],
)
def test_an_upload_that_is_not_the_form_is_a_bad_request(
    client: Client, content_type: str, payload: bytes | None
) -> None:
    answer = body(start_upload(client))
    path = "/" + answer["upload_url"].split("://", 1)[1].split("/", 1)[1]
    sent = photo_png("coffee") if payload is None else payload
    refused = client.http.post(path, headers={"Content-Type": content_type}, body=sent)
    assert_error(refused, 400, "invalid_request")


def test_the_retired_put_to_an_upload_url_is_not_allowed(client: Client) -> None:
    answer = body(start_upload(client))
    path = "/" + answer["upload_url"].split("://", 1)[1].split("/", 1)[1]
    put = client.http.put(path, headers={"Content-Type": "image/png"}, body=photo_png("coffee"))
    assert_error(put, 405, "method_not_allowed")


@pytest.mark.parametrize("payload", [{"content_type": "text/html"}, {"content_type": 5}, [1]])
def test_upload_tickets_are_only_for_images(client: Client, payload: Any) -> None:
    assert_error(start_upload(client, payload), 400, "invalid_request")


def test_callback_gets_the_finished_record_signed(labelling_client: Client) -> None:
    with PostReceiver() as receiver:
        callback = receiver.url("/hooks/labels")
        response = labelling_client.http.post(
            f"/images?callback_url={callback}",
            headers={"Content-Type": "image/png"},
            body=photo_png("coffee"),
        )
        image_id = body(response)["image_id"]
        assert body(response)["webhook"]["status"] == "PENDING"
        deliver_stream(labelling_client)
        assert receiver.requests == []  # labelling only queues the callback
        deliver_callbacks(labelling_client)
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/labels")
    sent = json.loads(request.body)
    assert (sent["image_id"], sent["status"]) == (image_id, "CLASSIFIED")
    assert sent["labels"][0]["name"] == "espresso"
    signature = request.headers[SIGNATURE_HEADER.lower()]
    assert verify(b"local-development-secret", signature, request.body, now=time.time())
    webhook = body(labelling_client.http.get(f"/images/{image_id}"))["webhook"]
    assert (webhook["status"], webhook["attempts"], webhook["url"]) == ("DELIVERED", 1, callback)


def test_a_callback_that_keeps_failing_is_recorded_failed(client: Client) -> None:
    with PostReceiver() as receiver:
        receiver.status = 500
        payload = {"url": "", "callback_url": receiver.url("/broken")}
        with loopback_server() as photos:
            payload["url"] = photos.serve("/cat.png", photo_png("chelsea"))
            image_id = body(submit_json(client, payload))["image_id"]
        deliver_stream(client)
        deliver_callbacks(client)
    record = body(client.http.get(f"/images/{image_id}"))
    assert record["status"] == "CLASSIFIED"  # the labels are there all the same
    webhook = record["webhook"]
    assert (webhook["status"], webhook["attempts"]) == ("FAILED", 3)
    assert "500" in webhook["last_error"]
    assert len(receiver.requests) == 3


@pytest.mark.parametrize(
    ("callback", "code"),
    [("file:///tmp/x", "url_not_allowed"), ("", "invalid_request"), (42, "invalid_request")],
)
def test_a_bad_callback_refuses_the_submit_and_stores_nothing(
    client: Client, callback: object, code: str
) -> None:
    with loopback_server() as photos:
        url = photos.serve("/coffee.png", photo_png("coffee"))
        response = submit_json(client, {"url": url, "callback_url": callback})
    assert_error(response, 400, code)
    assert photos.requests == []  # refused before the image was fetched


def test_health_answers_ok_without_touching_storage(client: Client, tmp_path: Path) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}
    # The fixture's key is in the data folder; nothing else was made there.
    assert not (tmp_path / "data" / "images").exists()
