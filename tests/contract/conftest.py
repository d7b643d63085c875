"""Every adapter of a port runs the same contract suite: add new backends to the params."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore
from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.adapters.sqlite_keys import SqliteKeyStore
from chalicelib.ports import ImageStore, KeyStore, LabelTable
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
