"""The API key rules and use case: what a key looks like, what is stored of it, and which
presented keys authenticate (on the SQLite store: the contract suite covers both)."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.adapters.sqlite_keys import SqliteKeyStore
from chalicelib.api_keys import ApiKeys
from chalicelib.domain.api_keys import (
    KEY_PATTERN,
    DuplicateKeyId,
    InvalidKeyLabel,
    InvalidTenant,
    Principal,
    UnknownApiKey,
    format_key,
    parse_key,
    secret_hash,
)
from chalicelib.domain.models import LEGACY_TENANT

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database: SqliteDatabase) -> SqliteKeyStore:
    return SqliteKeyStore(database)


@pytest.fixture
def keys(store: SqliteKeyStore, clock: Clock) -> ApiKeys:
    return ApiKeys(store, clock)


def test_a_new_key_has_its_id_and_256_bits_of_secret(keys: ApiKeys) -> None:
    issued = keys.create("acme")

    presented = parse_key(issued.key)
    assert presented is not None
    assert presented.key_id == issued.record.key_id
    # token_urlsafe(32): 32 random bytes, 43 base64 characters.
    assert len(presented.secret) == 43
    assert KEY_PATTERN.fullmatch(issued.key)


def test_only_the_secrets_hash_is_stored(keys: ApiKeys, store: SqliteKeyStore) -> None:
    issued = keys.create("acme", label="build server")
    presented = parse_key(issued.key)
    assert presented is not None

    stored = store.get(issued.record.key_id)

    assert stored == issued.record
    assert stored.secret_hash == secret_hash(presented.secret)
    assert presented.secret not in repr(stored)
    assert presented.secret not in repr(issued)


def test_the_secret_is_nowhere_in_the_database_file(
    keys: ApiKeys, database: SqliteDatabase
) -> None:
    issued = keys.create("acme")
    presented = parse_key(issued.key)
    assert presented is not None

    files = [database.path, *database.path.parent.glob(database.path.name + "-*")]
    assert not any(presented.secret.encode() in path.read_bytes() for path in files)


def test_every_key_is_different(keys: ApiKeys) -> None:
    issued = [keys.create("acme") for _ in range(20)]
    assert len({key.key for key in issued}) == 20
    assert len({key.record.key_id for key in issued}) == 20


def test_a_new_key_authenticates_as_its_tenant(keys: ApiKeys) -> None:
    issued = keys.create("acme")
    assert keys.authenticate(issued.key) == Principal(issued.record.key_id, "acme")


def test_a_revoked_key_never_authenticates(keys: ApiKeys, clock: Clock) -> None:
    issued = keys.create("acme")
    clock.now = T0 + timedelta(hours=1)

    revoked = keys.revoke(issued.record.key_id)

    assert revoked.revoked_at == clock.now
    assert keys.authenticate(issued.key) is None


def test_revoking_twice_keeps_the_first_time(keys: ApiKeys, clock: Clock) -> None:
    issued = keys.create("acme")
    clock.now = T0 + timedelta(hours=1)
    keys.revoke(issued.record.key_id)
    clock.now = T0 + timedelta(hours=2)

    assert keys.revoke(issued.record.key_id).revoked_at == T0 + timedelta(hours=1)


def test_revoking_an_unknown_key_id_says_so(keys: ApiKeys) -> None:
    with pytest.raises(UnknownApiKey):
        keys.revoke("0123456789abcdef")


def wrong_secret(key: str) -> str:
    presented = parse_key(key)
    assert presented is not None
    flipped = ("A" if presented.secret[0] != "A" else "B") + presented.secret[1:]
    return format_key(presented.key_id, flipped)


@pytest.mark.parametrize(
    "make_presented",
    [
        pytest.param(lambda key: "", id="empty"),
        pytest.param(lambda key: "not a key", id="garbage"),
        pytest.param(lambda key: key[:-1], id="truncated"),
        pytest.param(lambda key: key + " ", id="trailing-space"),
        pytest.param(lambda key: "Bearer " + key, id="with-scheme"),
        pytest.param(lambda key: key.replace("ilk_", "xyz_", 1), id="other-prefix"),
        pytest.param(wrong_secret, id="wrong-secret"),
        pytest.param(
            lambda key: format_key("0123456789abcdef", key.rsplit("_", 1)[-1].rjust(43, "a")),
            id="unknown-id",
        ),
    ],
)
def test_a_malformed_unknown_or_wrong_key_does_not_authenticate(
    keys: ApiKeys, make_presented: object
) -> None:
    issued = keys.create("acme")
    assert callable(make_presented)
    assert keys.authenticate(make_presented(issued.key)) is None


def test_another_keys_secret_does_not_pass_for_this_key_id(keys: ApiKeys) -> None:
    first, second = keys.create("acme"), keys.create("globex")
    first_key, second_key = parse_key(first.key), parse_key(second.key)
    assert first_key is not None and second_key is not None

    assert keys.authenticate(format_key(first_key.key_id, second_key.secret)) is None


@pytest.mark.parametrize(
    "tenant", ["", "Acme", "-acme", "acme_corp", "acme corp", "a" * 64, "acmé", "acme\n"]
)
def test_a_bad_tenant_name_is_refused(keys: ApiKeys, store: SqliteKeyStore, tenant: str) -> None:
    with pytest.raises(InvalidTenant):
        keys.create(tenant)
    assert store.list() == []


@pytest.mark.parametrize("tenant", ["acme", "0day", "acme-corp", "a" * 63])
def test_a_good_tenant_name_is_taken(keys: ApiKeys, tenant: str) -> None:
    assert keys.create(tenant).record.tenant == tenant


def test_no_key_is_issued_for_the_legacy_tenant(keys: ApiKeys, store: SqliteKeyStore) -> None:
    with pytest.raises(InvalidTenant, match="reserved"):
        keys.create(LEGACY_TENANT)
    assert store.list() == []


def test_a_label_is_kept_and_a_bad_one_refused(keys: ApiKeys) -> None:
    assert keys.create("acme", label="  laptop  ").record.label == "laptop"
    assert keys.create("acme", label="").record.label is None
    with pytest.raises(InvalidKeyLabel):
        keys.create("acme", label="x" * 201)
    with pytest.raises(InvalidKeyLabel):
        keys.create("acme", label="line\nbreak")


def test_a_taken_key_id_is_drawn_again(store: SqliteKeyStore, clock: Clock) -> None:
    ids = itertools.chain(
        ["aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa"], itertools.repeat("bbbbbbbbbbbbbbbb")
    )
    keys = ApiKeys(store, clock, new_id=lambda: next(ids))
    keys.create("acme")

    second = keys.create("acme")

    assert second.record.key_id == "bbbbbbbbbbbbbbbb"
    assert keys.authenticate(second.key) == Principal("bbbbbbbbbbbbbbbb", "acme")


def test_a_key_id_taken_every_time_is_an_error(store: SqliteKeyStore, clock: Clock) -> None:
    keys = ApiKeys(store, clock, new_id=lambda: "aaaaaaaaaaaaaaaa")
    keys.create("acme")
    with pytest.raises(DuplicateKeyId):
        keys.create("acme")


def test_list_shows_keys_by_tenant(keys: ApiKeys, clock: Clock) -> None:
    acme = keys.create("acme").record
    clock.now = T0 + timedelta(seconds=1)
    globex = keys.create("globex").record

    assert keys.list() == [acme, globex]
    assert keys.list("globex") == [globex]


def test_nothing_is_logged_with_the_secret(keys: ApiKeys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    issued = keys.create("acme")
    keys.authenticate(issued.key)
    keys.authenticate(wrong_secret(issued.key))
    keys.revoke(issued.record.key_id)

    assert issued.key.split("_", 2)[2] not in caplog.text
