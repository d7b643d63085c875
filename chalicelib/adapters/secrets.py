"""Where the webhook signing key comes from: a fixed value (local mode) or Secrets Manager.

On AWS the key is read at run time, never put in the function's environment, and kept
for a few minutes (`max_age_seconds`), so a rotated secret is in use everywhere within
that time without a redeploy, and a warm function calls Secrets Manager about once per
`max_age_seconds`, not once per callback. The reading and its cache are
aws-lambda-powertools' parameters utility (`SecretsProvider`).
"""

from __future__ import annotations

from typing import Any, Protocol


class SecretUnavailable(Exception):
    """The signing key could not be read: nothing can be signed until it can."""


class SigningKey(Protocol):
    """The current key that signs webhook deliveries (chalicelib.adapters.webhooks)."""

    def current(self) -> bytes:
        """The key in force now; SecretUnavailable when it cannot be read."""
        ...


class FixedKey:
    """One key for the life of the process: local mode's `IMAGELABELLER_WEBHOOK_SECRET`."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the webhook secret is empty")
        self._key = key

    def current(self) -> bytes:
        return self._key


# Long enough that a busy function reads the secret about once per five minutes, short
# enough that a rotation is in use everywhere soon after (docs/SECURITY.md).
DEFAULT_MAX_AGE_SECONDS = 300


class SecretsManagerKey:
    """The `SecretString` (or `SecretBinary`) of one secret, kept `max_age_seconds`."""

    def __init__(
        self, client: Any, secret_id: str, max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS
    ) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        if not secret_id:
            raise ValueError("no secret named")
        self._provider = SecretsProvider(boto3_client=client)
        self._secret_id = secret_id
        self._max_age = max_age_seconds

    @property
    def secret_id(self) -> str:
        return self._secret_id

    def current(self) -> bytes:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._provider.get(self._secret_id, max_age=self._max_age)
        except GetParameterError as exc:
            raise SecretUnavailable(
                f"the webhook secret {self._secret_id} could not be read from Secrets "
                f"Manager: {exc}"
            ) from exc
        key = value.encode() if isinstance(value, str) else value
        if not isinstance(key, bytes) or not key:
            raise SecretUnavailable(f"the webhook secret {self._secret_id} is empty")
        return key
