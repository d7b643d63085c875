"""The one place that chooses adapters: settings in, the wired use cases out."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.emf import EmfMetrics
from chalicelib.adapters.fetch import GuardedFetcher
from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.memory_rate import MemoryRequestRate
from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.adapters.secrets import FixedKey, SecretsManagerKey, SigningKey
from chalicelib.adapters.sqlite import SqliteChangeLog, SqliteDatabase, SqliteLabelTable
from chalicelib.adapters.sqlite_keys import SqliteKeyStore
from chalicelib.adapters.sqlite_queue import SqliteNotifier, SqliteQueue
from chalicelib.adapters.sqlite_quota import SqliteImageQuota
from chalicelib.adapters.webhooks import WebhookSender
from chalicelib.api_keys import ApiKeys
from chalicelib.config import ConfigError, Limits, Settings
from chalicelib.events.callbacks import CALLBACK_QUEUE
from chalicelib.labelling import TransientCheck
from chalicelib.local.queue import LocalQueuePoller, QueueHandler
from chalicelib.local.stream import (
    LocalStreamPoller,
    SqliteStreamSource,
    StreamHandler,
    StreamSource,
)
from chalicelib.ports import (
    ImageQuota,
    ImageStore,
    KeyStore,
    Labeller,
    LabelTable,
    Notifier,
    RequestRate,
)
from chalicelib.quotas import Quotas
from chalicelib.use_cases import UseCases, wire

DATABASE_FILE = "imagelabeller.sqlite3"
IMAGES_FOLDER = "images"


@dataclass(frozen=True)
class Components:
    settings: Settings
    use_cases: UseCases
    # Issued, listed and revoked by `imagelabeller keys`; checked on every keyed route.
    api_keys: ApiKeys
    quotas: Quotas
    database: SqliteDatabase | None
    # Local mode takes direct uploads itself; on AWS they go to S3.
    local_upload_store: FolderImageStore | None
    # Local mode's callback queue; on AWS it is an SQS queue.
    local_callback_queue: SqliteQueue | None


@dataclass(frozen=True)
class _Stores:
    """The backend's stores, all on one database file or one DynamoDB client."""

    images: ImageStore
    table: LabelTable
    keys: KeyStore
    request_rate: RequestRate
    image_quota: ImageQuota
    database: SqliteDatabase | None


def build(settings: Settings) -> Components:
    stores = _storage(settings)
    store, table, database = stores.images, stores.table, stores.database
    callback_queue = SqliteQueue(database, CALLBACK_QUEUE) if database is not None else None
    use_cases = wire(
        store=store,
        table=table,
        labeller=_labeller(settings),
        fetcher=GuardedFetcher(settings.limits, allow_private=settings.allow_private_urls),
        limits=settings.limits,
        top_k=settings.top_k,
        max_attempts=settings.label_max_attempts,
        metrics=EmfMetrics(),
        callbacks=_callbacks(settings),
        notifier=_notifier(settings, callback_queue),
        is_transient=_transient_check(settings),
    )
    local_store = store if isinstance(store, FolderImageStore) else None
    return Components(
        settings=settings,
        use_cases=use_cases,
        api_keys=ApiKeys(stores.keys),
        quotas=Quotas(
            stores.request_rate,
            stores.image_quota,
            settings.rate_limit_per_minute,
            settings.daily_image_quota,
        ),
        database=database,
        local_upload_store=local_store,
        local_callback_queue=callback_queue,
    )


def _storage(settings: Settings) -> _Stores:
    """The backend's stores. The key and quota stores share the label table's database or
    client, so that they cost nothing until a request reads them. Local mode's request rate
    is a token bucket in the server's memory; on AWS it is ImageLabelIndex items, shared by
    every instance of the function."""
    if settings.backend == "local":
        database = SqliteDatabase(settings.data_dir / DATABASE_FILE)
        return _Stores(
            images=FolderImageStore(settings.data_dir / IMAGES_FOLDER),
            table=SqliteLabelTable(database),
            keys=SqliteKeyStore(database),
            request_rate=MemoryRequestRate(),
            image_quota=SqliteImageQuota(database),
            database=database,
        )
    from chalicelib.adapters.dynamodb import DynamoDBLabelTable
    from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore
    from chalicelib.adapters.dynamodb_quotas import DynamoDBImageQuota, DynamoDBRequestRate
    from chalicelib.adapters.s3 import S3ImageStore

    if not settings.aws.bucket:
        raise ConfigError("IMAGELABELLER_BUCKET is required with the aws backend")
    dynamodb = _aws_client("dynamodb", settings)
    index = settings.aws.label_index_table
    return _Stores(
        images=S3ImageStore(_s3_client(settings), settings.aws.bucket),
        table=DynamoDBLabelTable(dynamodb, settings.aws.table, index),
        keys=DynamoDBKeyStore(dynamodb, index),
        request_rate=DynamoDBRequestRate(dynamodb, index),
        image_quota=DynamoDBImageQuota(dynamodb, index),
        database=None,
    )


def api_keys_for(settings: Settings) -> ApiKeys:
    """The key store of the settings' backend alone, for `imagelabeller keys`: no bucket,
    model or queue is needed to issue or revoke a key."""
    if settings.backend == "local":
        return ApiKeys(SqliteKeyStore(SqliteDatabase(settings.data_dir / DATABASE_FILE)))
    from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore

    dynamodb = _aws_client("dynamodb", settings)
    return ApiKeys(DynamoDBKeyStore(dynamodb, settings.aws.label_index_table))


def _transient_check(settings: Settings) -> TransientCheck:
    """What counts as a passing failure of the backends chosen (adapters/transient.py)."""
    from chalicelib.adapters import transient

    if settings.backend == "local":
        return transient.sqlite_transient
    return transient.aws_transient


def _labeller(settings: Settings) -> Labeller:
    if settings.labeller == "onnx":
        return OnnxLabeller(
            model_spec(settings.model),
            settings.model_path,
            settings.limits.max_image_pixels,
            settings.onnx_threads,
        )
    from chalicelib.adapters.sagemaker import create_sagemaker_labeller

    return create_sagemaker_labeller(settings.aws, settings.limits.max_image_pixels)


def _notifier(settings: Settings, local_queue: SqliteQueue | None) -> Notifier | None:
    if local_queue is not None:
        return SqliteNotifier(local_queue)
    if not settings.aws.callback_queue_url:
        return None
    from chalicelib.adapters.sqs import SqsNotifier

    return SqsNotifier(_aws_client("sqs", settings), settings.aws.callback_queue_url)


# A receiver gets less time than an image download: with three attempts and their backoff
# one delivery then ends within about 17 s, well inside its queue's visibility timeout.
WEBHOOK_LIMITS = Limits(fetch_connect_timeout=2.0, fetch_total_timeout=5.0, fetch_max_redirects=0)


def _callbacks(settings: Settings) -> WebhookSender | None:
    key = _signing_key(settings)
    if key is None:
        return None
    poster = GuardedFetcher(WEBHOOK_LIMITS, allow_private=settings.allow_private_urls)
    return WebhookSender(poster, key)


def _signing_key(settings: Settings) -> SigningKey | None:
    """Local mode's key from the stage; a deployed stage's from Secrets Manager, read when
    a callback is sent (only deliver_callbacks sends them, and only its role may read it)."""
    if settings.webhook_secret:
        return FixedKey(settings.webhook_secret.encode())
    if not settings.aws.webhook_secret_arn:
        return None
    return SecretsManagerKey(
        _aws_client("secretsmanager", settings),
        settings.aws.webhook_secret_arn,
        settings.aws.webhook_secret_max_age,
    )


def _aws_client(service: str, settings: Settings) -> Any:
    import boto3  # the Lambda runtime provides it; local mode installs it

    return boto3.client(service, region_name=settings.aws.region)


def _s3_client(settings: Settings) -> Any:
    """Signature V4, which buckets made since 2020 require (botocore would sign a presigned
    POST with V2), on the bucket's regional host name on AWS (a new bucket's global name
    may answer 307 for a while); an emulator's endpoint (AWS_ENDPOINT_URL) keeps paths."""
    import boto3
    from botocore.config import Config

    def client(addressing_style: str) -> Any:
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style, "us_east_1_regional_endpoint": "regional"},
        )
        return boto3.client("s3", region_name=settings.aws.region, config=config)

    default = client("auto")
    if str(default.meta.endpoint_url).endswith(".amazonaws.com"):
        return client("virtual")
    return default


_lock = threading.Lock()
_components: Components | None = None


def components() -> Components:
    """This process's components, built on first use from the environment.

    Rebuilt when the settings change, which happens only in tests (chalice's test client
    applies a stage's environment per request).
    """
    global _components
    settings = _settings_of(frozenset(os.environ.items()))
    with _lock:
        if _components is None or _components.settings != settings:
            _components = build(settings)
        return _components


@functools.lru_cache(maxsize=4)
def _settings_of(environment: frozenset[tuple[str, str]]) -> Settings:
    """Settings read once per environment: reading them looks for the model layer's
    package on sys.path, which cost a fifth of a request's time when done per request."""
    return Settings.from_environ(dict(environment))


def use_cases() -> UseCases:
    return components().use_cases


def api_keys() -> ApiKeys:
    return components().api_keys


def quotas() -> Quotas:
    return components().quotas


def local_stream_poller(handler: StreamHandler, stream_arn: str) -> LocalStreamPoller:
    """The stream emulation `chalice local` runs, reading the backend's own stream."""
    built = components()
    return LocalStreamPoller(
        _stream_source(built, stream_arn),
        handler,
        batch_size=built.settings.stream_batch_size,
        poll_seconds=built.settings.stream_poll_seconds,
        # New images of this process wake the worker at once instead of at its next poll.
        wait_for_changes=built.database.wait_for_commit if built.database else None,
    )


def _stream_source(built: Components, stream_arn: str) -> StreamSource:
    if built.database is not None:
        return SqliteStreamSource(SqliteChangeLog(built.database), stream_arn)
    from chalicelib.local.dynamodb_streams import DynamoDBStreamSource

    table = _aws_client("dynamodb", built.settings).describe_table(
        TableName=built.settings.aws.table
    )["Table"]
    if "LatestStreamArn" not in table:
        raise ConfigError(f"table {built.settings.aws.table} has no stream")
    streams = _aws_client("dynamodbstreams", built.settings)
    return DynamoDBStreamSource(streams, table["LatestStreamArn"])


# Deliveries at once in local mode: a slow receiver holds one of them.
LOCAL_CALLBACK_WORKERS = 4
# Longer than one delivery can take (WEBHOOK_LIMITS), as SQS's visibility timeout must be.
CALLBACK_VISIBILITY_SECONDS = 60.0


def local_callback_poller(handler: QueueHandler) -> LocalQueuePoller | None:
    """The callback queue's event source `chalice local` runs (None without a local queue)."""
    built = components()
    if built.local_callback_queue is None:
        return None
    return LocalQueuePoller(
        built.local_callback_queue,
        handler,
        workers=LOCAL_CALLBACK_WORKERS,
        visibility_seconds=CALLBACK_VISIBILITY_SECONDS,
        poll_seconds=built.settings.stream_poll_seconds * 5,
    )
