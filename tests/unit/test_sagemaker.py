"""The SageMaker labeller over real HTTP against the local InvokeEndpoint server.

The server runs the tiny stand-in graph, but in the tests that check what the labels say:
they take the `labelling_` fixtures, on the real Lite0 (`model`)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.sagemaker import (
    SageMakerLabeller,
    UnexpectedAnswer,
    class_scores,
    create_sagemaker_labeller,
    labels_from_answer,
)
from chalicelib.adapters.sqlite import SqliteLabelTable
from chalicelib.config import AwsSettings, ConfigError, Limits, Settings
from chalicelib.domain.errors import LabellerUnavailable
from chalicelib.domain.models import Status
from chalicelib.labelling import LabellingRetryNeeded
from chalicelib.use_cases import wire
from tests.fixtures.sagemaker import (
    SAGEMAKER_ENDPOINT,
    SAGEMAKER_REGION,
    TEST_MAX_ATTEMPTS,
    SageMakerLabellerFactory,
    sagemaker_client,
)
from tests.support import EXPECTED_TOP_LABELS, TENANT, NoNetwork, encode, free_port, photo_png
from tools.localaws.sagemaker_runtime import (
    ANSWER_VARIABLE,
    AnswerShape,
    Fault,
    LocalSageMakerRuntime,
    parse_arguments,
)

EXIF_ORIENTATION = 0x0112
MAX_PIXELS = Limits().max_image_pixels


def answer_body(scores: list[float]) -> bytes:
    return json.dumps({"predictions": [scores]}).encode()


def one_hot(index: int, value: float = 0.9) -> list[float]:
    rest = (1.0 - value) / 1000
    return [value if i == index else rest for i in range(1001)]


# The endpoint's answer


def test_labels_never_include_background_even_when_it_scores_highest() -> None:
    scores = one_hot(0, 0.9)
    scores[1 + 967] = 0.05  # ImageNet class 967, "espresso", is index 968 of the answer
    scores = [score / sum(scores) for score in scores]
    labels = labels_from_answer(answer_body(scores), top_k=1000)
    assert labels[0].name == "espresso"
    assert len(labels) == 1000
    assert "background" not in {label.name for label in labels}


def test_probabilities_are_kept_and_logits_become_probabilities() -> None:
    probabilities = one_hot(5)
    assert class_scores(answer_body(probabilities)).tolist() == pytest.approx(probabilities)
    logits = [float(i % 7) for i in range(1001)]
    scores = class_scores(answer_body(logits))
    assert scores.sum() == pytest.approx(1.0)
    assert int(np.argmax(scores)) == int(np.argmax(logits))


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"\xff\xd8 not utf-8 either",
        b'{"labels": ["tabby"]}',
        b"[[0.5, 0.5]]",
        answer_body([0.001] * 1000),
        json.dumps({"predictions": [one_hot(3), one_hot(4)]}).encode(),
        json.dumps({"predictions": [["a"] * 1001]}).encode(),
        answer_body([float("nan")] * 1001),
    ],
)
def test_an_answer_that_is_not_the_prediction_json_is_refused(body: bytes) -> None:
    with pytest.raises(UnexpectedAnswer):
        class_scores(body)


# JumpStart's image classifiers answer `probabilities`, and with `;verbose` their labels.
IMAGENET_LABELS = ["background", *(f"class {i}" for i in range(1000))]


def jumpstart_body(scores: list[float], verbose: bool = False, **changes: object) -> bytes:
    answer: dict[str, object] = {"probabilities": scores}
    if verbose:
        answer["labels"] = IMAGENET_LABELS
        answer["predicted_label"] = IMAGENET_LABELS[int(np.argmax(scores))]
    answer.update(changes)
    return json.dumps(answer).encode()


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_jumpstart_answers_give_the_same_scores_and_labels_as_tensorflow_serving(
    verbose: bool,
) -> None:
    scores = one_hot(1 + 967)  # "espresso"
    assert class_scores(jumpstart_body(scores, verbose)).tolist() == pytest.approx(scores)
    assert labels_from_answer(jumpstart_body(scores, verbose), top_k=3) == labels_from_answer(
        answer_body(scores), top_k=3
    )
    assert labels_from_answer(jumpstart_body(scores, verbose), top_k=1)[0].name == "espresso"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (jumpstart_body(one_hot(3)[:1000]), "expected 1001 scores"),
        (json.dumps({"probabilities": [one_hot(3)]}).encode(), "expected 1001 scores"),
        (json.dumps({"probabilities": "0.9"}).encode(), "one list of scores"),
        (jumpstart_body(one_hot(3), True, labels=IMAGENET_LABELS[:10]), "10 labels for 1001"),
        (jumpstart_body(one_hot(3), True, labels=list(range(1001))), "not a list of names"),
        (jumpstart_body(one_hot(3), True, predicted_label="unicorn"), "'unicorn' is not among"),
        (json.dumps({"scores": one_hot(3)}).encode(), '{"probabilities": [...]} (JumpStart)'),
    ],
    ids=[
        "1000 scores",
        "a batch of rows",
        "not a list",
        "too few labels",
        "labels not names",
        "unknown predicted label",
        "neither shape",
    ],
)
def test_a_jumpstart_answer_that_does_not_hold_together_is_refused_saying_why(
    body: bytes, reason: str
) -> None:
    with pytest.raises(UnexpectedAnswer, match=re.escape(reason)):
        class_scores(body)


@pytest.mark.parametrize("shape", list(AnswerShape), ids=lambda shape: shape.value)
def test_the_adapter_labels_alike_whatever_shape_the_endpoint_answers_in(
    shape: AnswerShape,
    sagemaker_server: LocalSageMakerRuntime,
    sagemaker_labeller_factory: SageMakerLabellerFactory,
) -> None:
    photos = [photo_png(name) for name in sorted(EXPECTED_TOP_LABELS)]
    expected = sagemaker_labeller_factory().label(photos, top_k=5)
    sagemaker_server.answer_with(shape)

    outcomes = sagemaker_labeller_factory().label(photos, top_k=5)

    assert all(outcome.ok for outcome in outcomes)
    assert [outcome.labels for outcome in outcomes] == [outcome.labels for outcome in expected]


def test_the_local_server_answers_in_the_shape_it_is_set_to(
    sagemaker_server: LocalSageMakerRuntime,
) -> None:
    image = encode(Image.new("RGB", (64, 64), (200, 30, 30)), "PNG")

    def answer(accept: str) -> dict[str, object]:
        found = sagemaker_server.answer(
            "/endpoints/jumpstart-inception-v3/invocations", "application/x-image", accept, image
        )
        assert found.status == 200
        loaded: dict[str, object] = json.loads(found.body)
        return loaded

    assert set(answer("application/json")) == {"predictions"}
    sagemaker_server.answer_with(AnswerShape.PROBABILITIES)
    assert set(answer("application/json")) == {"probabilities"}
    # As JumpStart does: verbose only when the accept type asks for it.
    verbose = answer("application/json;verbose")
    assert set(verbose) == {"probabilities", "labels", "predicted_label"}
    labels, probabilities = verbose["labels"], verbose["probabilities"]
    assert isinstance(labels, list) and isinstance(probabilities, list)
    assert labels[0] == "background" and len(labels) == len(probabilities) == 1001
    assert verbose["predicted_label"] == labels[int(np.argmax(probabilities))]
    sagemaker_server.answer_with(AnswerShape.VERBOSE)
    assert set(answer("application/json")) == {"probabilities", "labels", "predicted_label"}


def test_the_local_servers_answer_shape_is_a_flag_or_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ANSWER_VARIABLE, raising=False)
    assert parse_arguments([])[1].answer == "predictions"
    assert parse_arguments(["--answer", "verbose"])[1].answer == "verbose"
    monkeypatch.setenv(ANSWER_VARIABLE, "probabilities")
    assert parse_arguments([])[1].answer == "probabilities"
    assert parse_arguments(["--answer", "predictions"])[1].answer == "predictions"


# What the endpoint is sent


def test_the_endpoint_gets_a_small_rgb_jpeg_as_an_x_image(
    sagemaker_labeller: SageMakerLabeller, sagemaker_server: LocalSageMakerRuntime
) -> None:
    large_rgba = encode(Image.new("RGBA", (1600, 1200), (10, 200, 10, 128)), "PNG")
    [outcome] = sagemaker_labeller.label([large_rgba], top_k=5)
    assert outcome.ok
    [invocation] = sagemaker_server.invocations
    assert (invocation.endpoint, invocation.content_type, invocation.accept) == (
        SAGEMAKER_ENDPOINT,
        "application/x-image",
        "application/json",
    )
    with Image.open(io.BytesIO(invocation.body)) as sent:
        assert (sent.format, sent.mode, sent.size) == ("JPEG", "RGB", (683, 512))


def test_the_endpoint_gets_the_image_upright(
    sagemaker_labeller: SageMakerLabeller, sagemaker_server: LocalSageMakerRuntime
) -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # shown rotated 90 degrees clockwise
    sideways = encode(Image.new("RGB", (640, 480), (200, 30, 30)), "JPEG", exif=exif.tobytes())
    sagemaker_labeller.label([sideways], top_k=5)
    [invocation] = sagemaker_server.invocations
    with Image.open(io.BytesIO(invocation.body)) as sent:
        assert sent.size == (480, 640)
        assert EXIF_ORIENTATION not in sent.getexif()


def test_the_labeller_never_returns_background_from_the_endpoint(
    labelling_sagemaker_labeller: SageMakerLabeller,
) -> None:
    [outcome] = labelling_sagemaker_labeller.label([photo_png("chelsea")], top_k=1000)
    assert len(outcome.labels) == 1000
    assert "background" not in {label.name for label in outcome.labels}
    assert outcome.labels[0].name in EXPECTED_TOP_LABELS["chelsea"]


def test_an_undecodable_image_is_its_own_error_and_never_sent(
    sagemaker_labeller: SageMakerLabeller, sagemaker_server: LocalSageMakerRuntime
) -> None:
    [outcome] = sagemaker_labeller.label([b"not an image at all"], top_k=5)
    assert outcome.error is not None and "could not be decoded" in outcome.error
    assert sagemaker_server.request_count == 0


# Faults


def test_throttled_twice_then_answering_is_labelled(
    labelling_sagemaker_labeller: SageMakerLabeller,
    labelling_sagemaker_server: LocalSageMakerRuntime,
) -> None:
    labelling_sagemaker_server.inject(Fault.THROTTLING, times=2)
    [outcome] = labelling_sagemaker_labeller.label([photo_png("coffee")], top_k=5)
    assert outcome.labels[0].name == "espresso"
    assert labelling_sagemaker_server.request_count == 3


def test_unavailable_on_every_try_raises_after_the_configured_attempts(
    sagemaker_labeller: SageMakerLabeller, sagemaker_server: LocalSageMakerRuntime
) -> None:
    sagemaker_server.inject(Fault.UNAVAILABLE, times=None)
    with pytest.raises(LabellerUnavailable, match=SAGEMAKER_ENDPOINT):
        sagemaker_labeller.label([photo_png("coffee")], top_k=5)
    assert sagemaker_server.request_count == TEST_MAX_ATTEMPTS


def test_unknown_endpoint_is_unavailable_and_named_without_retries(
    sagemaker_labeller_factory: SageMakerLabellerFactory, sagemaker_server: LocalSageMakerRuntime
) -> None:
    labeller = sagemaker_labeller_factory(endpoint="no-such-endpoint")
    with pytest.raises(LabellerUnavailable, match="no-such-endpoint") as raised:
        labeller.label([photo_png("coffee")], top_k=5)
    assert "not found" in str(raised.value)
    assert sagemaker_server.request_count == 1


def test_unknown_endpoint_fails_a_whole_batch_without_calling_for_every_image(
    sagemaker_labeller_factory: SageMakerLabellerFactory, sagemaker_server: LocalSageMakerRuntime
) -> None:
    labeller = sagemaker_labeller_factory(endpoint="no-such-endpoint", max_workers=1)
    batch = [photo_png(name) for name in sorted(EXPECTED_TOP_LABELS)] * 3
    with pytest.raises(LabellerUnavailable, match="no-such-endpoint"):
        labeller.label(batch, top_k=5)
    assert sagemaker_server.request_count < len(batch)


def test_unreachable_endpoint_is_unavailable() -> None:
    client = sagemaker_client(f"http://127.0.0.1:{free_port()}", max_attempts=2)
    labeller = SageMakerLabeller(client, SAGEMAKER_ENDPOINT, MAX_PIXELS)
    try:
        with pytest.raises(LabellerUnavailable, match=f"{SAGEMAKER_ENDPOINT} could not be"):
            labeller.label([photo_png("coffee")], top_k=5)
    finally:
        client.close()


def test_a_model_error_fails_that_image_and_the_rest_is_labelled(
    labelling_sagemaker_labeller_factory: SageMakerLabellerFactory,
    labelling_sagemaker_server: LocalSageMakerRuntime,
) -> None:
    # One at a time: the first is refused.
    labeller = labelling_sagemaker_labeller_factory(max_workers=1)
    labelling_sagemaker_server.inject(Fault.MODEL_ERROR, times=1)
    refused, labelled = labeller.label([photo_png("chelsea"), photo_png("coffee")], top_k=5)
    assert refused.error is not None
    assert refused.error.startswith("the model could not label this image: ")
    assert "injected fault" in refused.error
    assert labelled.labels[0].name == "espresso"
    assert labelling_sagemaker_server.request_count == 2


def test_a_crashed_model_container_makes_the_endpoint_unavailable(
    sagemaker_labeller_factory: SageMakerLabellerFactory, sagemaker_server: LocalSageMakerRuntime
) -> None:
    labeller = sagemaker_labeller_factory(max_workers=1)
    sagemaker_server.inject(Fault.MODEL_CRASH, times=None)
    with pytest.raises(LabellerUnavailable, match=r"ModelError.*server error \(500\)"):
        labeller.label([photo_png("coffee")], top_k=5)


def test_an_unexpected_answer_fails_that_image_and_the_rest_is_labelled(
    labelling_sagemaker_labeller_factory: SageMakerLabellerFactory,
    labelling_sagemaker_server: LocalSageMakerRuntime,
) -> None:
    labeller = labelling_sagemaker_labeller_factory(max_workers=1)
    labelling_sagemaker_server.inject(Fault.BAD_ANSWER, times=1)
    garbled, labelled = labeller.label([photo_png("chelsea"), photo_png("coffee")], top_k=5)
    assert garbled.error is not None and "unexpected answer" in garbled.error
    assert labelled.labels[0].name == "espresso"


# The local server answers as SageMaker does


def test_local_server_answers_an_unknown_endpoint_with_a_validation_error(
    sagemaker_server: LocalSageMakerRuntime,
) -> None:
    client = sagemaker_client(sagemaker_server.url)
    try:
        with pytest.raises(client.exceptions.ClientError) as raised:
            client.invoke_endpoint(
                EndpointName="nope", ContentType="application/x-image", Body=b"x"
            )
    finally:
        client.close()
    assert raised.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": "Endpoint nope of account 123456789012 not found.",
    }
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_local_server_answers_an_undecodable_body_with_a_model_error(
    sagemaker_server: LocalSageMakerRuntime,
) -> None:
    client = sagemaker_client(sagemaker_server.url)
    try:
        with pytest.raises(client.exceptions.ModelError) as raised:
            client.invoke_endpoint(
                EndpointName=SAGEMAKER_ENDPOINT, ContentType="application/x-image", Body=b"x"
            )
    finally:
        client.close()
    answer = raised.value.response
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert answer["OriginalStatusCode"] == 400
    assert "not an image" in answer["OriginalMessage"]


# The factory


def test_factory_reaches_the_endpoint_named_by_boto3s_environment_variable(
    aws_environment: None,
    labelling_sagemaker_server: LocalSageMakerRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", labelling_sagemaker_server.url)
    settings = AwsSettings(
        region=SAGEMAKER_REGION, sagemaker_endpoint=SAGEMAKER_ENDPOINT, sagemaker_max_attempts=2
    )
    labeller = create_sagemaker_labeller(settings, MAX_PIXELS)
    [outcome] = labeller.label([photo_png("coffee")], top_k=5)
    assert outcome.labels[0].name == "espresso"
    assert labeller.model_id == f"sagemaker/{SAGEMAKER_ENDPOINT}"
    assert labelling_sagemaker_server.request_count == 1


def test_factory_requires_an_endpoint_name() -> None:
    with pytest.raises(ConfigError, match="IMAGELABELLER_SAGEMAKER_ENDPOINT"):
        create_sagemaker_labeller(AwsSettings(sagemaker_endpoint=""), MAX_PIXELS)


# The service on this labeller


def test_lasting_endpoint_outage_ends_the_image_failed_naming_the_endpoint(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    sagemaker_labeller_factory: SageMakerLabellerFactory,
    sagemaker_server: LocalSageMakerRuntime,
) -> None:
    max_attempts = Settings().label_max_attempts
    service = wire(
        store=folder_store,
        table=sqlite_table,
        labeller=sagemaker_labeller_factory(max_attempts=2),
        fetcher=NoNetwork(),
        limits=Limits(),
        max_attempts=max_attempts,
    )
    record = service.submission.submit_upload(TENANT, photo_png("coffee")).record
    sagemaker_server.inject(Fault.UNAVAILABLE, times=None)
    for _ in range(max_attempts - 1):
        with pytest.raises(LabellingRetryNeeded):
            service.labelling.label_images([record.image_id])
        assert service.records.get(TENANT, record.image_id).status is Status.NOT_CLASSIFIED
    report = service.labelling.label_images([record.image_id])
    assert report.failed == [record.image_id]
    failed = service.records.get(TENANT, record.image_id)
    assert failed.status is Status.FAILED
    assert failed.error is not None and SAGEMAKER_ENDPOINT in failed.error
    assert failed.model == f"sagemaker/{SAGEMAKER_ENDPOINT}"
    assert sagemaker_server.request_count == max_attempts * 2
