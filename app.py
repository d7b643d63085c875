"""ImageLabeller's entry points: the HTTP routes and the handlers of the DynamoDB stream
and the two queues. Each parses its input (chalicelib/http, chalicelib/events), calls one
use case, and shapes the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, DynamoDBEvent, Request, Response, SQSEvent

from chalicelib import config, logs
from chalicelib.bootstrap import components, quotas, use_cases
from chalicelib.domain.api_keys import Principal
from chalicelib.domain.errors import ImageLabellerError
from chalicelib.domain.record_json import record_body
from chalicelib.events.callbacks import CALLBACK_QUEUE, callback_image_ids
from chalicelib.events.stream import image_ids_to_label
from chalicelib.events.uploads import UPLOAD_QUEUE, uploaded_objects
from chalicelib.http import callers, page, requests, responses
from chalicelib.local import uploads as local_uploads
from chalicelib.local import workers as local_workers

logs.configure_logging()  # before Chalice(), which then keeps its JSON handler
app = Chalice(app_name="imagelabeller")
app.register_middleware(logs.tag_request, "all")
app.api.binary_types.extend(
    media for media in requests.IMAGE_MEDIA_TYPES if media not in app.api.binary_types
)

STREAM_ARN = config.stream_arn()


def current_request() -> Request:
    request = app.current_request
    assert request is not None, "only called while handling a request"
    return request


def caller() -> Principal:
    return callers.caller_of(current_request())


@app.middleware("http")
def json_answers(event: Request, get_response: Any) -> Response:
    return responses.finish_response(get_response(event), event)


# Inside json_answers (registered after it), so that its 401s and 429s are finished too.
@app.middleware("http")
def require_api_key(event: Request, get_response: Any) -> Response:
    if callers.is_open(callers.route_of(event)):  # answered without any storage
        response: Response = get_response(event)
        return response
    built = components()
    try:
        callers.check_caller(event, built.settings, built.api_keys, built.quotas.admit_request)
    except ImageLabellerError as error:
        return responses.error_response(error)
    keyed_response: Response = get_response(event)
    return keyed_response


def charged_one[T](work: Callable[[], T], accepted: Callable[[T], int] = lambda _: 1) -> T:
    """`work`, which accepts at most one image (`accepted` says whether it did), within the
    caller's daily image quota."""
    return callers.charged_images(quotas(), caller(), 1, work, accepted)


@app.route("/", methods=["GET"])
def home_page() -> Response:
    return page.home_page()


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    """Liveness only: answers without touching storage or the model."""
    return {"status": "ok"}


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return page.openapi_document()


@app.route("/images", methods=["POST"], content_types=["*/*"])
@responses.answers_errors_as_json
def submit_image() -> Response:
    request = current_request()
    media_type = requests.media_type_of(request.headers)
    requests.require_media_type(media_type)
    body = requests.raw_body(request)
    submission = use_cases().submission
    tenant = caller().tenant
    if requests.is_image_upload(media_type):
        callback_url = requests.query_text(request.query_params, "callback_url")
        submitted = charged_one(
            lambda: submission.submit_upload(tenant, body, callback_url), callers.new_images
        )
        return responses.submission_response(submitted)
    asked = requests.url_submit(body)
    submitted = charged_one(
        lambda: submission.submit_url(tenant, asked.url, asked.callback_url), callers.new_images
    )
    return responses.submission_response(submitted)


@app.route("/images/batch", methods=["POST"], content_types=["*/*"])
@responses.answers_errors_as_json
def submit_image_batch() -> dict[str, Any]:
    asked = requests.batch_submit(requests.raw_body(current_request()))
    items = callers.charged_images(
        quotas(),
        caller(),
        len(asked.urls),
        lambda: use_cases().submission.submit_batch(
            caller().tenant, asked.urls, asked.callback_url
        ),
        lambda done: sum(callers.new_images(item.submission) for item in done if item.submission),
    )
    return responses.batch_body(items)


@app.route("/images/{image_id}", methods=["GET"])
@responses.answers_errors_as_json
def get_image(image_id: str) -> dict[str, Any]:
    view = requests.label_view(current_request().query_params, components().settings.top_k)
    return record_body(use_cases().records.get(caller().tenant, image_id), view)


@app.route("/images/{image_id}", methods=["DELETE"])
@responses.answers_errors_as_json
def delete_image(image_id: str) -> Response:
    use_cases().records.delete(caller().tenant, image_id)
    return Response(body="", status_code=204)


@app.route("/images/{image_id}/relabel", methods=["POST"], content_types=["*/*"])
@responses.answers_errors_as_json
def relabel_image(image_id: str) -> Response:
    record = charged_one(lambda: use_cases().records.relabel(caller().tenant, image_id))
    return Response(body=record_body(record), status_code=202)


@app.route("/labels/{name}/images", methods=["GET"])
@responses.answers_errors_as_json
def images_with_label(name: str) -> dict[str, Any]:
    page_asked = requests.search_page(current_request().query_params)
    label = requests.path_text(name)
    hits, next_token = use_cases().records.images_with_label(
        caller().tenant, label, page_asked.limit, page_asked.next_token
    )
    return responses.search_body(label, hits, next_token)


@app.route("/uploads", methods=["POST"], content_types=["*/*"])
@responses.answers_errors_as_json
def start_upload() -> Response:
    request = current_request()
    content_type = requests.upload_content_type(requests.raw_body(request))
    # The form is one image of the day's quota: its bytes are registered off this request.
    ticket = charged_one(lambda: use_cases().uploads.start_upload(caller().tenant, content_type))
    return responses.upload_ticket_response(ticket, request.headers)


@app.route("/uploads/{image_id}", methods=["POST"], content_types=["*/*"])
@responses.answers_errors_as_json
def receive_local_upload(image_id: str) -> Response:
    """Local mode only: where `upload_url` points (on AWS, a presigned S3 POST)."""
    request = current_request()
    content_type = request.headers.get("content-type")
    submission = local_uploads.receive(image_id, content_type, requests.raw_body(request))
    return responses.submission_response(submission)


@app.route("/submit-image", methods=["GET"])
@responses.answers_errors_as_json
def legacy_submit_image() -> dict[str, str]:
    url = requests.required_query_parameter(current_request().query_params, "url")
    submitted = charged_one(
        lambda: use_cases().submission.submit_url(caller().tenant, url), callers.new_images
    )
    return {"ImageId": submitted.record.image_id}


@app.route("/get-image-label", methods=["GET"])
@responses.answers_errors_as_json
def legacy_get_image_label() -> dict[str, str]:
    image_id = requests.required_query_parameter(current_request().query_params, "imageId")
    return {"ImageLabel": use_cases().records.get(caller().tenant, image_id).legacy_label}


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=16, starting_position="TRIM_HORIZON")
def label_new_images(event: DynamoDBEvent) -> None:
    image_ids = image_ids_to_label(record.to_dict() for record in event)
    use_cases().labelling.label_images(image_ids)


@app.on_sqs_message(queue=UPLOAD_QUEUE, batch_size=10)
def register_uploads(event: SQSEvent) -> None:
    for upload in uploaded_objects(record.to_dict() for record in event):
        use_cases().uploads.register_upload(upload.tenant, upload.image_id, upload.size)


# One message per call: a slow receiver delays only its own callback.
@app.on_sqs_message(queue=CALLBACK_QUEUE, batch_size=1)
def deliver_callbacks(event: SQSEvent) -> None:
    image_ids = callback_image_ids(record.to_dict() for record in event)
    use_cases().labelling.deliver_callbacks(image_ids)


local_workers.start_under_chalice_local(label_new_images, deliver_callbacks, STREAM_ARN)
