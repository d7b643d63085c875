"""A local SageMaker Runtime serving InvokeEndpoint as JumpStart's Inception V3 answers it.

moto's sagemaker-runtime cannot take binary bodies, so the SageMaker labeller is tested (and
run locally) against this server over real HTTP. It labels with the in-process
EfficientNet-Lite model and answers 1001 scores with index 0 the background class, in the
shape `--answer` (or LOCAL_SAGEMAKER_ANSWER) chooses:

- `predictions`: TensorFlow Serving's `{"predictions": [[p0, ..., p1000]]}` (the default);
- `probabilities`: JumpStart's `{"probabilities": [...]}`, with `labels` and
  `predicted_label` too when the request's accept type has `;verbose`, as JumpStart does;
- `verbose`: JumpStart's verbose answer whatever the accept type.

Errors have the status, `x-amzn-ErrorType` and body of botocore's service model, so boto3
raises what it raises against AWS. Tests can inject faults.

    python -m tools.localaws.sagemaker_runtime --port 8081 --endpoint jumpstart-inception-v3
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from chalicelib.adapters.onnx import MODELS, OnnxLabeller, model_spec
from chalicelib.config import DEFAULT_MODEL, Limits, model_file
from chalicelib.domain import imaging
from chalicelib.domain.classes import imagenet_class_names
from chalicelib.domain.errors import ImageLabellerError, LabellerUnavailable
from chalicelib.domain.ranking import softmax

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
DEFAULT_ENDPOINT = "jumpstart-inception-v3"
DEFAULT_PORT = 8081
IMAGE_CONTENT_TYPE = "application/x-image"
INVOCATIONS_PREFIX = "/endpoints/"
INVOCATIONS_SUFFIX = "/invocations"
ANSWER_VARIABLE = "LOCAL_SAGEMAKER_ANSWER"


class AnswerShape(enum.Enum):
    """The JSON an answer has (see the module's doc)."""

    PREDICTIONS = "predictions"
    PROBABILITIES = "probabilities"
    VERBOSE = "verbose"


class Fault(enum.Enum):
    """What an injected fault answers instead of the model."""

    UNAVAILABLE = "unavailable"  # 503 ServiceUnavailable (retried by botocore)
    THROTTLING = "throttling"  # 429 ThrottlingException (retried by botocore)
    MODEL_ERROR = "model_error"  # 424 ModelError: the container refused the request
    MODEL_CRASH = "model_crash"  # 424 ModelError: the container failed (original status 500)
    BAD_ANSWER = "bad_answer"  # 200 with a body that is not the prediction JSON


@dataclass(frozen=True)
class Invocation:
    """One request as the server received it."""

    endpoint: str
    content_type: str
    accept: str
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class LocalSageMakerRuntime:
    def __init__(
        self,
        model: OnnxLabeller,
        endpoints: Iterable[str] = (DEFAULT_ENDPOINT,),
        host: str = "127.0.0.1",
        port: int = 0,
        max_pixels: int = Limits.max_image_pixels,
        answer: AnswerShape = AnswerShape.PREDICTIONS,
    ) -> None:
        self.endpoints = frozenset(endpoints)
        self._default_answer = answer
        self._answer = answer
        self._model = model
        self._max_pixels = max_pixels
        self._lock = threading.Lock()
        self._invocations: list[Invocation] = []
        self._fault: Fault | None = None
        self._fault_times: int | None = 0
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="local-sagemaker-runtime", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._invocations)

    def start(self) -> LocalSageMakerRuntime:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so only if running
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Answer the next `times` requests with `fault` (None: every request until reset)."""
        with self._lock:
            self._fault, self._fault_times = fault, times

    def answer_with(self, shape: AnswerShape) -> None:
        """Answer in `shape` from now on (until reset)."""
        with self._lock:
            self._answer = shape

    def reset(self) -> None:
        """No faults, no recorded requests, the answer shape it was started with."""
        with self._lock:
            self._fault, self._fault_times = None, 0
            self._invocations.clear()
            self._answer = self._default_answer

    def answer(self, path: str, content_type: str, accept: str, body: bytes) -> Answer:
        endpoint = _endpoint_name(path)
        with self._lock:
            self._invocations.append(Invocation(endpoint or path, content_type, accept, body))
            fault = self._take_fault()
            shape = self._answer
        if endpoint is None:
            return _error(404, "UnknownOperationException", {"message": f"no route {path}"})
        if fault is not None:
            return _fault_answer(fault, endpoint)
        if endpoint not in self.endpoints:
            message = f"Endpoint {endpoint} of account {ACCOUNT_ID} not found."
            return _error(400, "ValidationError", {"message": message})
        if content_type != IMAGE_CONTENT_TYPE:
            return _model_error(
                endpoint, f"content type {content_type!r} is not {IMAGE_CONTENT_TYPE}"
            )
        try:
            scores = self._scores(body)
        except ImageLabellerError as exc:
            return _model_error(endpoint, f"the image could not be read: {exc}")
        except LabellerUnavailable as exc:  # the local model itself failed
            return _error(500, "InternalFailure", {"message": str(exc)})
        body = json.dumps(_answer_json(scores, shape, verbose=";verbose" in accept)).encode()
        return Answer(200, body, {"Content-Type": "application/json"})

    def _take_fault(self) -> Fault | None:
        if self._fault is None or self._fault_times == 0:
            return None
        fault = self._fault
        if self._fault_times is not None:
            self._fault_times -= 1
            if self._fault_times <= 0:
                self._fault = None
        return fault

    def _scores(self, body: bytes) -> list[float]:
        spec = self._model.spec
        image = imaging.decode_rgb(body, self._max_pixels, min_short_side=spec.decode_short_side)
        tensor = imaging.preprocess([image], spec.input_size, spec.crop_fraction)
        probabilities = softmax(self._model.infer(tensor))[0]
        return [0.0, *(float(p) for p in probabilities)]  # index 0: background


def _answer_json(scores: list[float], shape: AnswerShape, verbose: bool) -> dict[str, Any]:
    if shape is AnswerShape.PREDICTIONS:
        return {"predictions": [scores]}
    answer: dict[str, Any] = {"probabilities": scores}
    if shape is AnswerShape.VERBOSE or verbose:
        labels = ["background", *imagenet_class_names()]
        answer["labels"] = labels
        answer["predicted_label"] = labels[max(range(len(scores)), key=scores.__getitem__)]
    return answer


def _endpoint_name(path: str) -> str | None:
    route = urlsplit(path).path
    if not (route.startswith(INVOCATIONS_PREFIX) and route.endswith(INVOCATIONS_SUFFIX)):
        return None
    name = unquote(route[len(INVOCATIONS_PREFIX) : -len(INVOCATIONS_SUFFIX)])
    return name if name and "/" not in name else None


def _fault_answer(fault: Fault, endpoint: str) -> Answer:
    if fault is Fault.UNAVAILABLE:
        return _error(503, "ServiceUnavailable", {"message": "Service Unavailable"})
    if fault is Fault.THROTTLING:
        return _error(429, "ThrottlingException", {"message": "Rate exceeded"})
    if fault is Fault.MODEL_ERROR:
        return _model_error(endpoint, "injected fault: the model refused this request")
    if fault is Fault.MODEL_CRASH:
        return _model_error(endpoint, "injected fault: the model crashed", original_status=500)
    return Answer(200, b"<html>not a prediction</html>", {"Content-Type": "text/html"})


def _model_error(endpoint: str, original_message: str, original_status: int = 400) -> Answer:
    """The 424 SageMaker sends when the container answers an error status of its own."""
    kind = "client" if original_status < 500 else "server"
    message = (
        f"Received {kind} error ({original_status}) from primary with message "
        f'"{original_message}". '
        f"See the log group /aws/sagemaker/Endpoints/{endpoint} in account {ACCOUNT_ID} "
        "for more information."
    )
    body = {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": "",
        "Message": message,
        "OriginalMessage": original_message,
        "OriginalStatusCode": original_status,
    }
    return _error(424, "ModelError", body)


def _error(status: int, error_type: str, body: dict[str, Any]) -> Answer:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
    return Answer(status, json.dumps(body).encode(), headers)


def _handler_for(runtime: LocalSageMakerRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = runtime.answer(
                self.path,
                self.headers.get("Content-Type", ""),
                self.headers.get("Accept", ""),
                body,
            )
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            log.info(format, *args)

    return Handler


def parse_arguments(
    argv: Sequence[str] | None = None,
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description="Serve SageMaker Runtime's InvokeEndpoint locally with the ONNX model."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--endpoint",
        action="append",
        help=f"an endpoint name to serve (repeatable; default {DEFAULT_ENDPOINT})",
    )
    parser.add_argument("--model-name", choices=sorted(MODELS), default=DEFAULT_MODEL)
    parser.add_argument("--model", type=Path, help="its ONNX file (default: the one it builds)")
    parser.add_argument(
        "--answer",
        choices=[shape.value for shape in AnswerShape],
        default=os.environ.get(ANSWER_VARIABLE, AnswerShape.PREDICTIONS.value),
        help=f"the answer's JSON shape (default: ${ANSWER_VARIABLE}, else predictions)",
    )
    return parser, parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    parser, args = parse_arguments(argv)
    model_path = args.model or model_file(args.model_name)
    if not model_path.is_file():
        parser.error(f"no model file at {model_path}; build it with `make model`")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    model = OnnxLabeller(model_spec(args.model_name), model_path, Limits().max_image_pixels)
    endpoints = args.endpoint or [DEFAULT_ENDPOINT]
    shape = AnswerShape(args.answer)
    runtime = LocalSageMakerRuntime(
        model, endpoints, host=args.host, port=args.port, answer=shape
    ).start()
    print(
        f"serving SageMaker Runtime endpoint(s) {', '.join(endpoints)} on {runtime.url}, "
        f"answering {shape.value}"
    )
    print(f"point boto3 at it with AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={runtime.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
