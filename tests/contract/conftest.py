"""Every adapter of a port runs the same contract suite: add new backends to the params."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore
from chalicelib.adapters.dynamodb_quotas import DynamoDBImageQuota, DynamoDBRequestRate
from chalicelib.adapters.memory_rate import MemoryRequestRate
from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.adapters.sqlite_keys import SqliteKeyStore
from chalicelib.adapters.sqlite_quota import SqliteImageQuota
from chalicelib.ports import ImageQuota, ImageStore, KeyStore, LabelTable, RequestRate
from tests.fixtures.aws import LABEL_INDEX_TABLE


@pytest.fixture(params=["sqlite", "dynamodb"])
def label_table(request: pytest.FixtureRequest) -> LabelTable:
    table: LabelTable = request.getfixturevalue(f"{request.param}_table")
    return table


@pytest.fixture(params=["folder", "s3"])
def image_store(request: pytest.FixtureRequest) -> ImageStore:
    store: ImageStore = request.getfixturevalue(f"{request.param}_store")
    return store


@pytest.fixture
def sqlite_key_store(database: SqliteDatabase) -> SqliteKeyStore:
    return SqliteKeyStore(database)


@pytest.fixture
def dynamodb_key_store(dynamodb_client: Any) -> DynamoDBKeyStore:
    return DynamoDBKeyStore(dynamodb_client, LABEL_INDEX_TABLE)


@pytest.fixture(params=["sqlite", "dynamodb"])
def key_store(request: pytest.FixtureRequest) -> KeyStore:
    store: KeyStore = request.getfixturevalue(f"{request.param}_key_store")
    return store


class OneCallAtATime:
    """A DynamoDB client whose calls run one at a time. DynamoDB applies each call, its
    condition included, atomically; moto evaluates a condition and then writes, and
    threads can interleave in between. Serialising the calls restores DynamoDB's
    guarantee, so that tests with threads check our algorithms and not moto's locking."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def serialised(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return serialised


class ManualClock:
    """Seconds that move only when a test moves them (epoch-like, as time.time)."""

    def __init__(self, now: float = 1_796_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def rate_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def memory_request_rate(rate_clock: ManualClock) -> MemoryRequestRate:
    return MemoryRequestRate(clock=rate_clock)


@pytest.fixture
def dynamodb_request_rate(dynamodb_client: Any, rate_clock: ManualClock) -> DynamoDBRequestRate:
    return DynamoDBRequestRate(OneCallAtATime(dynamodb_client), LABEL_INDEX_TABLE, clock=rate_clock)


@pytest.fixture(params=["memory", "dynamodb"])
def request_rate(request: pytest.FixtureRequest) -> RequestRate:
    rate: RequestRate = request.getfixturevalue(f"{request.param}_request_rate")
    return rate


@pytest.fixture
def sqlite_image_quota(database: SqliteDatabase) -> SqliteImageQuota:
    return SqliteImageQuota(database)


@pytest.fixture
def dynamodb_image_quota(dynamodb_client: Any) -> DynamoDBImageQuota:
    return DynamoDBImageQuota(OneCallAtATime(dynamodb_client), LABEL_INDEX_TABLE)


@pytest.fixture(params=["sqlite", "dynamodb"])
def image_quota(request: pytest.FixtureRequest) -> ImageQuota:
    quota: ImageQuota = request.getfixturevalue(f"{request.param}_image_quota")
    return quota
