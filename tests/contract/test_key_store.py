"""The KeyStore contract, run against SQLite and DynamoDB (moto)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.api_keys import ApiKeyRecord, DuplicateKeyId, new_key_id, secret_hash
from chalicelib.ports import KeyStore

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def new_key(tenant: str = "acme", at: datetime = T0, label: str | None = None) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=new_key_id(),
        tenant=tenant,
        secret_hash=secret_hash(uuid.uuid4().hex),
        created_at=at,
        label=label,
    )


def test_a_stored_key_reads_back_equal(key_store: KeyStore) -> None:
    record = new_key(label="CI pipeline")
    key_store.put_new(record)
    assert key_store.get(record.key_id) == record


def test_a_key_without_label_reads_back_equal(key_store: KeyStore) -> None:
    record = new_key()
    key_store.put_new(record)
    assert key_store.get(record.key_id) == record


def test_an_unknown_key_id_reads_as_none(key_store: KeyStore) -> None:
    assert key_store.get(new_key_id()) is None


def test_a_second_key_with_the_same_id_is_refused_and_the_first_kept(
    key_store: KeyStore,
) -> None:
    first = new_key("acme")
    key_store.put_new(first)
    with pytest.raises(DuplicateKeyId):
        key_store.put_new(replace(new_key("intruder"), key_id=first.key_id))
    assert key_store.get(first.key_id) == first


def test_revoking_marks_the_key_revoked_at_that_time(key_store: KeyStore) -> None:
    record = new_key()
    key_store.put_new(record)
    at = T0 + timedelta(hours=1)

    revoked = key_store.revoke(record.key_id, at)

    assert revoked == replace(record, revoked_at=at)
    assert key_store.get(record.key_id) == revoked


def test_revoking_twice_is_harmless_and_the_first_time_stands(key_store: KeyStore) -> None:
    record = new_key()
    key_store.put_new(record)
    first = T0 + timedelta(hours=1)
    key_store.revoke(record.key_id, first)

    again = key_store.revoke(record.key_id, first + timedelta(days=1))

    assert again is not None and again.revoked_at == first
    assert key_store.get(record.key_id) == again


def test_revoking_an_unknown_key_creates_nothing(key_store: KeyStore) -> None:
    key_id = new_key_id()
    assert key_store.revoke(key_id, T0) is None
    assert key_store.get(key_id) is None
    assert key_store.list() == []


def test_list_gives_every_key_oldest_first_revoked_ones_too(key_store: KeyStore) -> None:
    later = new_key("acme", T0 + timedelta(minutes=5))
    earlier = new_key("globex", T0)
    revoked = new_key("acme", T0 + timedelta(minutes=10))
    for record in (later, earlier, revoked):
        key_store.put_new(record)
    key_store.revoke(revoked.key_id, T0 + timedelta(hours=1))

    listed = key_store.list()

    assert [record.key_id for record in listed] == [
        earlier.key_id,
        later.key_id,
        revoked.key_id,
    ]
    assert listed[2].revoked


def test_list_of_a_tenant_gives_its_keys_only(key_store: KeyStore) -> None:
    ours = [new_key("acme", T0), new_key("acme", T0 + timedelta(seconds=1))]
    for record in [*ours, new_key("globex")]:
        key_store.put_new(record)

    assert key_store.list("acme") == ours
    assert key_store.list("initech") == []
