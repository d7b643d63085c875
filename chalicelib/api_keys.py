"""The API key use case: issue, list, revoke, and check a presented key.

`authenticate` is what every keyed route's check calls (chalicelib/http/callers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chalicelib.domain.api_keys import (
    ApiKeyRecord,
    DuplicateKeyId,
    IssuedKey,
    Principal,
    UnknownApiKey,
    checked_label,
    checked_tenant,
    format_key,
    new_key_id,
    new_secret,
    parse_key,
    secret_hash,
    secret_matches,
)
from chalicelib.domain.models import utc_now
from chalicelib.ports import KeyStore

# Tries at a fresh key id if one is taken (2^64 ids: in practice never needed).
ISSUE_ATTEMPTS = 3


class ApiKeys:
    def __init__(
        self,
        store: KeyStore,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_key_id,
        new_secret: Callable[[], str] = new_secret,
    ) -> None:
        self._store = store
        self._clock = clock
        self._new_id = new_id
        self._new_secret = new_secret

    def create(self, tenant: str, label: str | None = None) -> IssuedKey:
        """A new key of `tenant`; raises InvalidTenant, InvalidKeyLabel. The whole key is
        in the answer only: the store keeps its secret's hash."""
        tenant = checked_tenant(tenant)
        label = checked_label(label)
        for attempt in range(1, ISSUE_ATTEMPTS + 1):
            secret = self._new_secret()
            record = ApiKeyRecord(
                key_id=self._new_id(),
                tenant=tenant,
                secret_hash=secret_hash(secret),
                created_at=self._clock(),
                label=label,
            )
            try:
                self._store.put_new(record)
            except DuplicateKeyId:
                if attempt == ISSUE_ATTEMPTS:
                    raise
                continue
            return IssuedKey(format_key(record.key_id, secret), record)
        raise AssertionError("unreachable")

    def list(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        return self._store.list(tenant)

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke the key (again is harmless: the first revocation's time stands); raises
        UnknownApiKey if no key has this id."""
        record = self._store.revoke(key_id, self._clock())
        if record is None:
            raise UnknownApiKey(f"no API key has the id {key_id!r}")
        return record

    def authenticate(self, presented: str) -> Principal | None:
        """Who presents this key; None for a malformed, unknown, wrong or revoked key,
        alike, so the answer tells a caller nothing about which."""
        key = parse_key(presented)
        if key is None:
            return None
        record = self._store.get(key.key_id)
        stored_hash = record.secret_hash if record is not None else None
        if not secret_matches(key.secret, stored_hash) or record is None or record.revoked:
            return None
        return Principal(key_id=record.key_id, tenant=record.tenant)
