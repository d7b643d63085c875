"""The one place that chooses adapters: settings in, a wired ImageService out."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.sqlite import SqliteChangeLog, SqliteDatabase, SqliteLabelTable
from chalicelib.config import ConfigError, Settings
from chalicelib.fetch import GuardedFetcher
from chalicelib.local.stream import LocalStreamPoller, StreamHandler
from chalicelib.ports import ImageStore, Labeller, LabelTable
from chalicelib.service import ImageService

DATABASE_FILE = "imagelabeller.sqlite3"
IMAGES_FOLDER = "images"


@dataclass(frozen=True)
class Components:
    settings: Settings
    service: ImageService
    database: SqliteDatabase | None


def build(settings: Settings) -> Components:
    store, table, database = _storage(settings)
    service = ImageService(
        store=store,
        table=table,
        labeller=_labeller(settings),
        fetcher=GuardedFetcher(settings.limits, allow_private=settings.allow_private_urls),
        limits=settings.limits,
        top_k=settings.top_k,
        max_attempts=settings.label_max_attempts,
    )
    return Components(settings=settings, service=service, database=database)


def _storage(settings: Settings) -> tuple[ImageStore, LabelTable, SqliteDatabase | None]:
    if settings.backend == "local":
        database = SqliteDatabase(settings.data_dir / DATABASE_FILE)
        store = FolderImageStore(settings.data_dir / IMAGES_FOLDER)
        return store, SqliteLabelTable(database), database
    raise ConfigError(f"backend {settings.backend!r} is not available in this build")


def _labeller(settings: Settings) -> Labeller:
    if settings.labeller == "onnx":
        return OnnxLabeller(
            settings.model_path, settings.limits.max_image_pixels, settings.onnx_threads
        )
    raise ConfigError(f"labeller {settings.labeller!r} is not available in this build")


_lock = threading.Lock()
_components: Components | None = None


def components() -> Components:
    """This process's components, built on first use from the environment.

    Rebuilt when the settings change, which happens only in tests (chalice's test client
    applies a stage's environment per request).
    """
    global _components
    settings = Settings.from_environ()
    with _lock:
        if _components is None or _components.settings != settings:
            _components = build(settings)
        return _components


def get_service() -> ImageService:
    return components().service


def local_stream_poller(handler: StreamHandler, stream_arn: str) -> LocalStreamPoller:
    built = components()
    if built.database is None:
        raise ConfigError("the local stream emulation needs the local backend")
    return LocalStreamPoller(
        SqliteChangeLog(built.database),
        handler,
        stream_arn=stream_arn,
        batch_size=built.settings.stream_batch_size,
        poll_seconds=built.settings.stream_poll_seconds,
    )
