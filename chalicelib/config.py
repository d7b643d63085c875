"""Settings, read once from the IMAGELABELLER_* environment variables.

Nothing else in the code reads os.environ. Under `chalice.test.Client` a stage's variables
are applied per request, so callers read settings lazily (see bootstrap.use_cases).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib.domain.model_catalogue import CATALOGUE

PACKAGE_DIR = Path(__file__).resolve().parent
# Where `make setup` builds the models: outside chalicelib/, which Chalice zips whole. On
# AWS the model comes from the model layer instead (model_location).
MODELS_DIR = PACKAGE_DIR.parent / "models"
# The package the model layer puts on sys.path (/opt/python on Lambda; an emulator may
# extract layers elsewhere but still adds their python/ folder), holding `<model>.onnx`.
LAYER_MODELS_PACKAGE = "imagelabeller_models"
# The models of the catalogue, chalicelib/data/models.json (domain/model_catalogue.py).
MODEL_NAMES = CATALOGUE.names
DEFAULT_MODEL = CATALOGUE.default
DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "imagelabeller"
# Chalice needs some ARN at import time to declare the event source; deployed stages set it.
PLACEHOLDER_STREAM_ARN = (
    "arn:aws:dynamodb:us-west-2:123456789012:table/ImageLabels/stream/1970-01-01T00:00:00.000"
)

# The service's name in logs and metrics.
SERVICE_NAME = "imagelabeller"
BACKENDS = ("local", "aws")
LABELLERS = ("onnx", "sagemaker")


class ConfigError(ValueError):
    """An IMAGELABELLER_* variable holds a value we cannot use."""


def model_file(model: str) -> Path:
    """Where `make setup` builds the ONNX file of `model`."""
    return MODELS_DIR / f"{model}.onnx"


def model_location(model: str, environ: Mapping[str, str] | None = None) -> Path:
    """Where the app looks for `model`'s ONNX file, the first of these that exists:

    1. the folder IMAGELABELLER_MODEL_DIR names;
    2. the folder of the importable package `imagelabeller_models` (the model layer);
    3. the project's models/ folder, where `make setup` builds it.

    A place that exists wins even without the file, so the error names where it looked.
    (IMAGELABELLER_MODEL_PATH, one file, overrides all three in Settings.from_environ.)
    """
    env = os.environ if environ is None else environ
    folder = env.get("IMAGELABELLER_MODEL_DIR", "").strip()
    if folder:
        return Path(folder).expanduser() / f"{model}.onnx"
    # find_spec locates the package without importing (running) it.
    spec = importlib.util.find_spec(LAYER_MODELS_PACKAGE)
    if spec is not None and spec.origin:
        return Path(spec.origin).resolve().parent / f"{model}.onnx"
    return model_file(model)


DEFAULT_MODEL_PATH = model_file(DEFAULT_MODEL)


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    fetch_connect_timeout: float = 3.0
    fetch_total_timeout: float = 15.0
    fetch_max_redirects: int = 3


@dataclass(frozen=True)
class AwsSettings:
    """Where the AWS backend and the SageMaker labeller find their resources.

    Endpoint overrides for tests and local runs go through boto3's own variables
    (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, ...), so the code is the same
    as in Lambda.
    """

    region: str = "us-west-2"
    bucket: str = ""
    table: str = "ImageLabels"
    label_index_table: str = "ImageLabelIndex"
    # The SQS queue finished images with a callback go to (its URL); none: no callbacks.
    callback_queue_url: str = ""
    sagemaker_endpoint: str = ""
    sagemaker_max_attempts: int = 4
    sagemaker_timeout: float = 30.0
    # The Secrets Manager secret (ARN or name) that signs webhooks; read at run time.
    webhook_secret_arn: str = ""
    # How long a function keeps the secret it read before reading it again.
    webhook_secret_max_age: int = 300


@dataclass(frozen=True)
class Settings:
    backend: str = "local"
    labeller: str = "onnx"
    data_dir: Path = DEFAULT_DATA_DIR
    model: str = DEFAULT_MODEL
    model_path: Path = DEFAULT_MODEL_PATH  # from_environ: the model's own file by default
    allow_private_urls: bool = False
    limits: Limits = Limits()
    top_k: int = 10
    label_max_attempts: int = 3
    stream_batch_size: int = 16
    stream_poll_seconds: float = 0.05
    onnx_threads: int = 0
    local_stream: bool = True
    # The key itself, for local mode only: deployed functions read
    # aws.webhook_secret_arn instead, and refuse this in a Lambda environment.
    webhook_secret: str = ""
    # Every route but the open ones needs an API key. Off only for a local measurement of
    # what the check costs (scripts/bench_auth.py): every caller is then `legacy`.
    require_api_keys: bool = True
    # The original's keyless GET /submit-image and /get-image-label, as the `legacy`
    # tenant: on for local and test, off by default (then they need a key like the rest).
    legacy_routes_open: bool = False
    # Per API key: requests in any minute (a token bucket), and images accepted a UTC day.
    rate_limit_per_minute: int = 600
    daily_image_quota: int = 10_000
    aws: AwsSettings = AwsSettings()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env_source = os.environ if environ is None else environ
        env = _Reader(env_source)
        model = env.choice("MODEL", MODEL_NAMES, DEFAULT_MODEL)
        webhook_secret = env.text("WEBHOOK_SECRET", "")
        if webhook_secret and env_source.get("AWS_LAMBDA_FUNCTION_NAME"):
            raise ConfigError(
                "IMAGELABELLER_WEBHOOK_SECRET is set in a Lambda function's environment, where "
                "anyone who may read the function's configuration sees it; deployed stages "
                "name the secret with IMAGELABELLER_WEBHOOK_SECRET_ARN instead"
            )
        backend = env.choice("BACKEND", BACKENDS, "local")
        require_api_keys = env.flag("REQUIRE_API_KEYS", True)
        if not require_api_keys and backend != "local":
            raise ConfigError(
                "IMAGELABELLER_REQUIRE_API_KEYS=false is for local measurements only; a "
                "deployed API always needs keys"
            )
        return cls(
            backend=backend,
            labeller=env.choice("LABELLER", LABELLERS, "onnx"),
            data_dir=Path(env.text("DATA_DIR", str(DEFAULT_DATA_DIR))).expanduser(),
            model=model,
            model_path=Path(
                env.text("MODEL_PATH", str(model_location(model, env_source)))
            ).expanduser(),
            allow_private_urls=env.flag("ALLOW_PRIVATE_URLS", False),
            limits=Limits(
                max_image_bytes=env.integer("MAX_IMAGE_BYTES", Limits.max_image_bytes),
                max_image_pixels=env.integer("MAX_IMAGE_PIXELS", Limits.max_image_pixels),
                fetch_connect_timeout=env.number(
                    "FETCH_CONNECT_TIMEOUT", Limits.fetch_connect_timeout
                ),
                fetch_total_timeout=env.number("FETCH_TOTAL_TIMEOUT", Limits.fetch_total_timeout),
                fetch_max_redirects=env.integer(
                    "FETCH_MAX_REDIRECTS", Limits.fetch_max_redirects, minimum=0
                ),
            ),
            top_k=env.integer("TOP_K", 10),
            label_max_attempts=env.integer("LABEL_MAX_ATTEMPTS", 3),
            stream_batch_size=env.integer("STREAM_BATCH_SIZE", 16),
            stream_poll_seconds=env.number("STREAM_POLL_SECONDS", 0.05),
            onnx_threads=env.integer("ONNX_THREADS", 0, minimum=0),
            local_stream=env.flag("LOCAL_STREAM", True),
            webhook_secret=webhook_secret,
            require_api_keys=require_api_keys,
            legacy_routes_open=env.flag("LEGACY_ROUTES_OPEN", False),
            rate_limit_per_minute=env.integer("RATE_LIMIT_PER_MINUTE", 600),
            daily_image_quota=env.integer("DAILY_IMAGE_QUOTA", 10_000),
            aws=AwsSettings(
                region=env.text("AWS_REGION", _lambda_region(env_source) or AwsSettings.region),
                bucket=env.text("BUCKET", ""),
                table=env.text("TABLE", AwsSettings.table),
                label_index_table=env.text("LABEL_INDEX_TABLE", AwsSettings.label_index_table),
                callback_queue_url=env.text("CALLBACK_QUEUE_URL", ""),
                sagemaker_endpoint=env.text("SAGEMAKER_ENDPOINT", ""),
                sagemaker_max_attempts=env.integer(
                    "SAGEMAKER_MAX_ATTEMPTS", AwsSettings.sagemaker_max_attempts
                ),
                sagemaker_timeout=env.number("SAGEMAKER_TIMEOUT", AwsSettings.sagemaker_timeout),
                webhook_secret_arn=env.text("WEBHOOK_SECRET_ARN", ""),
                webhook_secret_max_age=env.integer(
                    "WEBHOOK_SECRET_MAX_AGE", AwsSettings.webhook_secret_max_age, minimum=0
                ),
            ),
        )


def _lambda_region(environ: Mapping[str, str]) -> str:
    """The region Lambda (or the AWS CLI convention) names."""
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""


def stream_arn(environ: Mapping[str, str] | None = None) -> str:
    """The DynamoDB stream the label handler subscribes to (read at import by app.py)."""
    env = os.environ if environ is None else environ
    return env.get("IMAGELABELLER_STREAM_ARN") or PLACEHOLDER_STREAM_ARN


def running_under_chalice_local(argv: list[str] | None = None) -> bool:
    """True in the process that serves `chalice local` (not `chalice package`, not tests)."""
    args = sys.argv if argv is None else argv
    return bool(os.environ.get("AWS_CHALICE_CLI_MODE")) and "local" in args[1:]


class _Reader:
    PREFIX = "IMAGELABELLER_"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(self.PREFIX + name, "").strip()
        return value or default

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(name, default).lower()
        if value not in allowed:
            raise ConfigError(f"{self.PREFIX}{name}={value!r}: expected one of {allowed}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name, "true" if default else "false").lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{self.PREFIX}{name}={value!r}: expected true or false")

    def integer(self, name: str, default: int, minimum: int = 1) -> int:
        value = self._number(name, default, int)
        if value < minimum:
            raise ConfigError(f"{self.PREFIX}{name}={value}: must be at least {minimum}")
        return int(value)

    def number(self, name: str, default: float) -> float:
        value = self._number(name, default, float)
        if value <= 0:
            raise ConfigError(f"{self.PREFIX}{name}={value}: must be positive")
        return float(value)

    def _number(self, name: str, default: float, kind: type) -> float:
        raw = self.text(name, str(default))
        try:
            return kind(raw)  # type: ignore[no-any-return]
        except ValueError:
            raise ConfigError(f"{self.PREFIX}{name}={raw!r}: expected a number") from None
