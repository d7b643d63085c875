"""RequestRate and ImageQuota on items of the search table `ImageLabelIndex`, shared by
every Lambda instance.

- a key's request rate: `LabelKey = "RATE#<key id>"`, `Rank = "BUCKET"`;
- a key's images of a UTC day: `LabelKey = "IMAGES#<key id>"`, `Rank = "<YYYY-MM-DD>"`.

Upper-case partitions, which label_key() (case-folded) never makes, as with the API keys
(dynamodb_keys.py) and the byte claims: no search reads these items. Each carries
`ExpiresAt` (epoch seconds) for the table's TTL: a rate item an hour after its last use,
a day's count two days after that day. TTL deletes late (up to days), so nothing here
depends on it: an expired rate item is a full bucket anyway, and an old day is never asked.

The rate is GCRA (the generic cell rate algorithm): a token bucket kept as one number,
`Arrival`, the key's "theoretical arrival time" (TAT, epoch seconds). Each request moves
it on by the emission interval T = 60 s / per_minute, from now if it lies in the past; a
request is admitted while the TAT it finds lies within a minute less T of now, which lets
a full bucket of `per_minute` requests pass at once. Why not tokens and a time: those
change together, which takes a read and then a write conditional on what was read (two
calls, and retries when instances race). Moving one number on is one UpdateItem with no
read first, conditional on the TAT lying in [now, now + 60 s - T], which DynamoDB applies
atomically; when the condition fails, the update returns the item
(ReturnValuesOnConditionCheckFailure), which says which way: too far ahead (refused, and
by how long) or in the past. Only then, the first request after the key's bucket refilled
completely, is there a second call, a reset to now + T conditional on the TAT still lying
in the past, so that of two instances resetting at once one wins and the other retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_errors import CONDITION_FAILED, error_code

RATE_ITEM_LIFETIME = 3600  # seconds after the last request
DAY_COUNT_LIFETIME = timedelta(days=2)  # after the day has ended
WINDOW = Decimal(60)
MICROSECOND = Decimal("0.000001")
# Lost races before a request gives up and is refused for one interval: each lost race
# means another instance admitted or refused a request of the same key meanwhile.
ATTEMPTS = 4


class DynamoDBRequestRate:
    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def take(self, key_id: str, per_minute: int) -> float | None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, not {per_minute}")
        # Rounded down, so that per_minute intervals never add up to more than a minute.
        interval = (WINDOW / per_minute).quantize(MICROSECOND, rounding=ROUND_DOWN)
        for _ in range(ATTEMPTS):
            now = Decimal(self._clock()).quantize(MICROSECOND, rounding=ROUND_HALF_EVEN)
            admitted, arrival = self._advance(key_id, now, interval)
            if admitted:
                return None
            if arrival is not None and arrival >= now:
                wait = arrival + interval - WINDOW - now
                if wait > 0:
                    return float(wait)
            # No item, or its TAT is in the past: the bucket is full; start it again.
            elif self._restart(key_id, now, interval):
                return None
        return float(interval)

    def _advance(self, key_id: str, now: Decimal, interval: Decimal) -> tuple[bool, Decimal | None]:
        """(True, None) if admitted; else (False, the TAT that refused it, None if no item)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_rate_key(key_id),
                UpdateExpression="SET Arrival = Arrival + :interval, ExpiresAt = :expires",
                ConditionExpression="Arrival BETWEEN :now AND :latest",
                ExpressionAttributeValues={
                    ":interval": _number(interval),
                    ":now": _number(now),
                    ":latest": _number(now + WINDOW - interval),
                    ":expires": _number(_rate_expiry(now)),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            item = error.response.get("Item") or {}
            return False, (Decimal(item["Arrival"]["N"]) if "Arrival" in item else None)
        return True, None

    def _restart(self, key_id: str, now: Decimal, interval: Decimal) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_rate_key(key_id),
                UpdateExpression="SET Arrival = :next, ExpiresAt = :expires",
                ConditionExpression="attribute_not_exists(Arrival) OR Arrival < :now",
                ExpressionAttributeValues={
                    ":next": _number(now + interval),
                    ":now": _number(now),
                    ":expires": _number(_rate_expiry(now)),
                },
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            return False  # another instance restarted or advanced it: try again
        return True


class DynamoDBImageQuota:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def reserve(self, key_id: str, day: str, count: int, limit: int) -> bool:
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        if count > limit:
            return False
        if count == 0:
            return True
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_day_key(key_id, day),
                UpdateExpression="ADD Images :count SET ExpiresAt = :expires",
                ConditionExpression="attribute_not_exists(Images) OR Images <= :room",
                ExpressionAttributeValues={
                    ":count": _number(count),
                    ":room": _number(limit - count),
                    ":expires": _number(_day_expiry(day)),
                },
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    def release(self, key_id: str, day: str, count: int) -> None:
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        if count == 0:
            return
        for _ in range(ATTEMPTS):
            if self._update_if(
                key_id,
                day,
                "ADD Images :minus",
                "Images >= :count",
                {":minus": _number(-count), ":count": _number(count)},
            ):
                return
            # Fewer than `count` left (or no item): down to 0, never below, never created.
            if self._update_if(
                key_id,
                day,
                "SET Images = :zero",
                "Images < :count",
                {":zero": _number(0), ":count": _number(count)},
            ):
                return
            if self.used(key_id, day) == 0:
                return

    def used(self, key_id: str, day: str) -> int:
        answer = self._client.get_item(
            TableName=self._table, Key=_day_key(key_id, day), ConsistentRead=True
        )
        item = answer.get("Item") or {}
        return int(item["Images"]["N"]) if "Images" in item else 0

    def _update_if(
        self, key_id: str, day: str, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_day_key(key_id, day),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True


def _rate_key(key_id: str) -> dict[str, Any]:
    return {"LabelKey": {"S": f"RATE#{key_id}"}, "Rank": {"S": "BUCKET"}}


def _day_key(key_id: str, day: str) -> dict[str, Any]:
    return {"LabelKey": {"S": f"IMAGES#{key_id}"}, "Rank": {"S": day}}


def _rate_expiry(now: Decimal) -> int:
    return int(now) + RATE_ITEM_LIFETIME


def _day_expiry(day: str) -> int:
    day_end = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)
    return int((day_end + DAY_COUNT_LIFETIME).timestamp())


def _number(value: int | Decimal) -> dict[str, str]:
    return {"N": str(value)}
