"""Which exceptions of a backend are the infrastructure's, not the image's: a throttle, a
dropped connection, a busy database. Labelling sets aside an image whose labelling raises
and marks it FAILED, but one of these says nothing about the image: it must reach the
stream, so that the batch is retried.

Each backend knows its own exceptions, so the composition root hands the use case the
classifier of the backends it chose (bootstrap.py). That keeps botocore and sqlite3 out of
the use case, and no adapter has to wrap every call it makes to translate its errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.domain.errors import StorageFull

# Error codes AWS answers when the request may succeed if sent again later (botocore's
# own retry rules name the same ones), whatever the service.
RETRYABLE_CODES = frozenset(
    {
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionInProgressException",
    }
)
# Why DynamoDB cancelled one item of a transaction, when trying again may succeed.
RETRYABLE_CANCELLATIONS = frozenset(
    {"ProvisionedThroughputExceeded", "ThrottlingError", "TransactionConflict"}
)
SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# How far down an exception's causes to look.
MAX_CAUSES = 5


def aws_transient(error: BaseException) -> bool:
    """A network failure, a throttle or a 5xx of an AWS service, raised or as a cause."""
    return any(_aws_transient(cause) for cause in _causes(error))


def sqlite_transient(error: BaseException) -> bool:
    """The database is busy or locked, or the disk is full, raised or as a cause."""
    return any(_sqlite_transient(cause) for cause in _causes(error))


def _aws_transient(error: BaseException) -> bool:
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return True  # no answer at all: refused, timed out, connection dropped
    if not isinstance(error, ClientError):
        return False
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in RETRYABLE_CODES or (isinstance(status, int) and status >= 500):
        return True
    reasons = error.response.get("CancellationReasons") or []
    return code == "TransactionCanceledException" and any(
        reason.get("Code") in RETRYABLE_CANCELLATIONS for reason in reasons
    )


def _sqlite_transient(error: BaseException) -> bool:
    if isinstance(error, StorageFull):
        return True
    if not isinstance(error, sqlite3.OperationalError):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    # The extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary one in the low byte.
    return isinstance(code, int) and code & 0xFF in SQLITE_BUSY_CODES


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it was raised from (`raise ... from`), a few levels deep. Not
    what it was raised while handling: that may be an error already dealt with."""
    current: BaseException | None = error
    for _ in range(MAX_CAUSES):
        if current is None:
            return
        yield current
        current = current.__cause__
