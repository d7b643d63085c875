"""ImageLabeller's entry points: HTTP routes and the DynamoDB stream handler.

Thin on purpose: parse the request, call the service, shape the answer (chalicelib/http/api.py).
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, DynamoDBEvent, Request, Response, SQSEvent

from chalicelib import config, logs
from chalicelib.bootstrap import (
    components,
    get_service,
    local_callback_poller,
    local_stream_poller,
)
from chalicelib.domain import record_json as views
from chalicelib.domain.errors import ImageNotFound, UploadNotAllowed
from chalicelib.events.callbacks import CALLBACK_QUEUE, callback_image_ids
from chalicelib.events.stream import image_ids_to_label
from chalicelib.events.uploads import uploaded_image_ids
from chalicelib.http import api
from chalicelib.http import page as web
from chalicelib.local import dev_server, workers
from chalicelib.service import upload_key

logs.configure_logging()  # before Chalice(), which then keeps its JSON handler
app = Chalice(app_name="imagelabeller")
app.register_middleware(logs.tag_request, "all")
app.api.binary_types.extend(
    media for media in api.IMAGE_MEDIA_TYPES if media not in app.api.binary_types
)

STREAM_ARN = config.stream_arn()
# The bucket notifies this queue of direct uploads (cloudformation/s3.yaml).
UPLOAD_QUEUE = "imagelabeller-uploads"


def current_request() -> Request:
    request = app.current_request
    assert request is not None, "only called while handling a request"
    return request


@app.middleware("http")
def json_answers(event: Request, get_response: Any) -> Response:
    return api.finish_response(get_response(event), event)


@app.route("/", methods=["GET"])
def home_page() -> Response:
    return web.home_page()


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    """Liveness only: answers without touching storage or the model."""
    return {"status": "ok"}


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return web.openapi_document()


@app.route("/images", methods=["POST"], content_types=["*/*"])
@api.answers_errors_as_json
def submit_image() -> Response:
    request = current_request()
    media_type = api.media_type_of(request.headers)
    api.require_media_type(media_type)
    body = api.raw_body(request)
    if api.is_image_upload(media_type):
        callback_url = api.query_value(request.query_params, "callback_url")
        submission = get_service().submit_upload(body, callback_url)
    else:
        asked = api.submit_request(body, "url")
        submission = get_service().submit_url(asked.target, asked.callback_url)
    return api.submission_response(submission)


@app.route("/images/batch", methods=["POST"], content_types=["*/*"])
@api.answers_errors_as_json
def submit_image_batch() -> dict[str, Any]:
    asked = api.submit_request(api.raw_body(current_request()), "urls")
    return api.batch_body(get_service().submit_batch(asked.target, asked.callback_url))


@app.route("/images/{image_id}", methods=["GET"])
@api.answers_errors_as_json
def get_image(image_id: str) -> dict[str, Any]:
    view = api.label_view(current_request().query_params, components().settings.top_k)
    return views.record_body(get_service().get(image_id), view)


@app.route("/images/{image_id}", methods=["DELETE"])
@api.answers_errors_as_json
def delete_image(image_id: str) -> Response:
    get_service().delete(image_id)
    return Response(body="", status_code=204)


@app.route("/images/{image_id}/relabel", methods=["POST"], content_types=["*/*"])
@api.answers_errors_as_json
def relabel_image(image_id: str) -> Response:
    return Response(body=views.record_body(get_service().relabel(image_id)), status_code=202)


@app.route("/labels/{name}/images", methods=["GET"])
@api.answers_errors_as_json
def images_with_label(name: str) -> dict[str, Any]:
    page = api.search_page(current_request().query_params)
    hits, next_token = get_service().images_with_label(
        api.path_text(name), page.limit, page.next_token
    )
    return api.search_body(api.path_text(name), hits, next_token)


@app.route("/uploads", methods=["POST"], content_types=["*/*"])
@api.answers_errors_as_json
def start_upload() -> Response:
    request = current_request()
    ticket = get_service().start_upload(api.upload_content_type(api.raw_body(request)))
    return api.upload_ticket_response(ticket, request.headers)


@app.route("/uploads/{image_id}", methods=["PUT"], content_types=["*/*"])
@api.answers_errors_as_json
def receive_local_upload(image_id: str) -> Response:
    """Local mode's stand-in for a presigned S3 PUT and the registration S3's notification
    starts; the same URL used again answers the first record, or 409 for other bytes."""
    request = current_request()
    store = components().local_upload_store
    if store is None:
        raise ImageNotFound("uploads go to the URL that POST /uploads answered")
    signature = api.upload_signature(request.query_params)
    if not store.upload_allowed(upload_key(image_id), *signature):
        raise UploadNotAllowed("the upload URL is not valid or has expired")
    submission = get_service().receive_upload(image_id, api.raw_body(request))
    return api.submission_response(submission)


@app.route("/submit-image", methods=["GET"])
@api.answers_errors_as_json
def legacy_submit_image() -> dict[str, str]:
    url = api.required_query_parameter(current_request().query_params, "url")
    return {"ImageId": get_service().submit_url(url).record.image_id}


@app.route("/get-image-label", methods=["GET"])
@api.answers_errors_as_json
def legacy_get_image_label() -> dict[str, str]:
    image_id = api.required_query_parameter(current_request().query_params, "imageId")
    return {"ImageLabel": get_service().get(image_id).legacy_label}


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=16, starting_position="TRIM_HORIZON")
def label_new_images(event: DynamoDBEvent) -> None:
    get_service().label_images(image_ids_to_label(record.to_dict() for record in event))


@app.on_sqs_message(queue=UPLOAD_QUEUE, batch_size=10)
def register_uploads(event: SQSEvent) -> None:
    for image_id in uploaded_image_ids(record.to_dict() for record in event):
        get_service().register_upload(image_id)


# One message per call: a slow receiver delays only its own callback.
@app.on_sqs_message(queue=CALLBACK_QUEUE, batch_size=1)
def deliver_callbacks(event: SQSEvent) -> None:
    get_service().deliver_callbacks(callback_image_ids(record.to_dict() for record in event))


if config.running_under_chalice_local():
    dev_server.tune()
    if config.Settings.from_environ().local_stream:
        workers.start_once("stream", lambda: local_stream_poller(label_new_images, STREAM_ARN))
    workers.start_once("callbacks", lambda: local_callback_poller(deliver_callbacks))
