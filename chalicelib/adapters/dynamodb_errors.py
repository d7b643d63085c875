"""What a DynamoDB ClientError says, read the same way by every DynamoDB adapter."""

from __future__ import annotations

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELLED = "TransactionCanceledException"
# Cancellation reasons of one item of a transaction.
CHECK_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def reason_codes(error: ClientError, count: int) -> list[str]:
    """The cancellation reason of each of a transaction's `count` items ("None" if fine)."""
    reasons = error.response.get("CancellationReasons", [])
    codes = [str(reason.get("Code", "None")) for reason in reasons]
    return (codes + ["None"] * count)[:count]
