"""Labeller calling the original system's SageMaker endpoint: JumpStart's Inception V3.

The endpoint takes one image per InvokeEndpoint call, so a batch's calls run concurrently.
botocore retries throttling, 5xx answers and dropped connections itself; what still fails
after its retries means the endpoint cannot answer now (LabellerUnavailable), unless the
error is about one image only.

Two answer shapes are read, whichever the container's inference code gives:

- TensorFlow Serving's, the original's: `{"predictions": [[p0, ..., p1000]]}`;
- JumpStart's image classifiers': `{"probabilities": [p0, ...]}`, and with a `;verbose`
  accept type also `"labels": [...]` and `"predicted_label": ...` beside them.

Either has the model's 1001 scores, index 0 "background" (TensorFlow Hub's ImageNet
classifiers). Labels are always named from our own class list by position, so that search
and concepts see the same names as with ONNX; the verbose `labels` only have to agree in
number.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from chalicelib.config import AwsSettings, ConfigError
from chalicelib.domain import imaging
from chalicelib.domain.classes import imagenet_class_names
from chalicelib.domain.errors import ImageLabellerError, LabellerUnavailable
from chalicelib.domain.models import Label, LabelOutcome
from chalicelib.domain.ranking import softmax, top_labels

CONTENT_TYPE = "application/x-image"
ACCEPT = "application/json"
# The container gets a plain upright RGB JPEG no larger than it needs.
MAX_SHORT_SIDE = 512
JPEG_QUALITY = 90
# Index 0 of a 1001-score answer is "background"; index i is ImageNet class i - 1.
CLASS_COUNT = 1001
PROBABILITY_SUM_TOLERANCE = 1e-3
CONNECT_TIMEOUT = 5.0


class UnexpectedAnswer(ValueError):
    """The endpoint answered something other than JumpStart's prediction JSON."""


class SageMakerLabeller:
    def __init__(
        self, client: Any, endpoint_name: str, max_pixels: int, max_workers: int = 4
    ) -> None:
        self._client = client
        self._endpoint = endpoint_name
        self._max_pixels = max_pixels
        self._max_workers = max_workers

    @property
    def model_id(self) -> str:
        return f"sagemaker/{self._endpoint}"

    def label(self, images: Iterable[bytes], top_k: int) -> list[LabelOutcome]:
        images = list(images)
        if not images:
            return []
        workers = min(self._max_workers, len(images))
        with ThreadPoolExecutor(workers, thread_name_prefix="sagemaker-invoke") as pool:
            futures = [pool.submit(self._label_one, data, top_k) for data in images]
            try:
                return [future.result() for future in futures]
            except LabellerUnavailable:
                # One unavailable endpoint answers for the whole batch: don't call it again.
                for future in futures:
                    future.cancel()
                raise

    def _label_one(self, data: bytes, top_k: int) -> LabelOutcome:
        try:
            jpeg = endpoint_jpeg(data, self._max_pixels)
        except ImageLabellerError as exc:
            return LabelOutcome(error=f"the image could not be decoded: {exc}")
        try:
            answer = self._client.invoke_endpoint(
                EndpointName=self._endpoint, ContentType=CONTENT_TYPE, Accept=ACCEPT, Body=jpeg
            )
            body = answer["Body"].read()
        except ClientError as error:
            return self._refusal(error)
        except BotoCoreError as error:  # connection errors and timeouts, after the retries
            raise LabellerUnavailable(
                f"SageMaker endpoint {self._endpoint} could not be reached: {error}"
            ) from error
        try:
            return LabelOutcome(labels=labels_from_answer(body, top_k))
        except UnexpectedAnswer as exc:
            return LabelOutcome(
                error=f"SageMaker endpoint {self._endpoint} gave an unexpected answer: {exc}"
            )

    def _refusal(self, error: Any) -> LabelOutcome:
        """An error about this image is its outcome; any other means the endpoint is down."""
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        message = str(details.get("Message", ""))
        if code == "ModelError" and not _container_failed(error.response):
            return LabelOutcome(error=f"the model could not label this image: {message}")
        if code == "ValidationError" and "not found" not in message.lower():
            # e.g. a body over the payload limit: about this request, not the endpoint.
            return LabelOutcome(error=f"the endpoint refused this image: {message}")
        raise LabellerUnavailable(
            f"SageMaker endpoint {self._endpoint} cannot answer ({code}): {message}"
        ) from error


def _container_failed(response: dict[str, Any]) -> bool:
    """A ModelError passing on a 5xx of the container (crashed, overloaded): not the image."""
    status = response.get("OriginalStatusCode")
    return isinstance(status, int) and status >= 500


def endpoint_jpeg(data: bytes, max_pixels: int) -> bytes:
    """The image as the container should get it: upright RGB JPEG, short side <= 512 px."""
    image = imaging.decode_rgb(data, max_pixels, min_short_side=MAX_SHORT_SIDE)
    short_side = min(image.size)
    if short_side > MAX_SHORT_SIDE:
        scale = MAX_SHORT_SIDE / short_side
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def labels_from_answer(body: bytes, top_k: int) -> tuple[Label, ...]:
    """The top_k ImageNet labels of a JumpStart answer; "background" is never one."""
    scores = class_scores(body)
    return top_labels(scores[1:], imagenet_class_names(), top_k)


def class_scores(body: bytes) -> np.ndarray:
    """The 1001 probabilities of either answer shape (see the module's doc).

    JumpStart's TensorFlow image classifiers answer probabilities. Should an endpoint answer
    logits instead (another model version), softmax turns them into probabilities so scores
    stay in [0, 1]; it is not applied to a probability vector, which it would flatten.
    """
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise UnexpectedAnswer(f"the answer is not JSON: {exc}") from None
    answered = _answered_scores(answer)
    try:
        scores = np.asarray(answered, dtype=np.float64)
    except (TypeError, ValueError):
        raise UnexpectedAnswer("the scores are not numbers") from None
    if scores.shape != (CLASS_COUNT,):
        raise UnexpectedAnswer(f"expected {CLASS_COUNT} scores, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise UnexpectedAnswer("the scores are not all finite")
    if _is_probability_vector(scores):
        return scores
    return softmax(scores)


def _answered_scores(answer: Any) -> Any:
    """The score list of a TensorFlow Serving or a JumpStart (plain or verbose) answer."""
    if isinstance(answer, dict) and "predictions" in answer:
        rows = answer["predictions"]
        if not isinstance(rows, list) or len(rows) != 1:
            raise UnexpectedAnswer('expected {"predictions": [[...]]} with one row')
        return rows[0]
    if isinstance(answer, dict) and "probabilities" in answer:
        probabilities = answer["probabilities"]
        if not isinstance(probabilities, list):
            raise UnexpectedAnswer('expected {"probabilities": [...]} with one list of scores')
        if "labels" in answer:
            _check_verbose_labels(answer, len(probabilities))
        return probabilities
    raise UnexpectedAnswer(
        'expected {"predictions": [[...]]} (TensorFlow Serving) or {"probabilities": [...]} '
        "(JumpStart)"
    )


def _check_verbose_labels(answer: dict[str, Any], count: int) -> None:
    labels = answer["labels"]
    if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
        raise UnexpectedAnswer("the verbose answer's labels are not a list of names")
    if len(labels) != count:
        raise UnexpectedAnswer(
            f"the verbose answer has {len(labels)} labels for {count} probabilities"
        )
    predicted = answer.get("predicted_label")
    if predicted is not None and predicted not in labels:
        raise UnexpectedAnswer(f"the predicted label {predicted!r} is not among the labels")


def _is_probability_vector(scores: np.ndarray) -> bool:
    return bool(
        (scores >= 0).all()
        and (scores <= 1).all()
        and abs(float(scores.sum()) - 1.0) <= PROBABILITY_SUM_TOLERANCE
    )


def endpoint_client_config(max_attempts: int, timeout: float) -> Any:
    """botocore's standard retries (throttling, 5xx, connection errors) and time limits.

    `max_attempts` counts every call, the first included: botocore's own `max_attempts` key
    counts retries only, so it would make one call more than configured.
    """
    return Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=min(CONNECT_TIMEOUT, timeout),
        read_timeout=timeout,
    )


def create_sagemaker_labeller(aws: AwsSettings, max_pixels: int) -> SageMakerLabeller:
    """The labeller for the configured endpoint.

    No endpoint URL is passed: boto3 reads AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME itself, so
    local runs and tests reach a local server with the same code that runs in Lambda.
    """
    if not aws.sagemaker_endpoint:
        raise ConfigError(
            "IMAGELABELLER_SAGEMAKER_ENDPOINT is required with the sagemaker labeller"
        )
    import boto3  # the Lambda runtime provides it

    client = boto3.client(
        "sagemaker-runtime",
        region_name=aws.region,
        config=endpoint_client_config(aws.sagemaker_max_attempts, aws.sagemaker_timeout),
    )
    return SageMakerLabeller(client, aws.sagemaker_endpoint, max_pixels)
