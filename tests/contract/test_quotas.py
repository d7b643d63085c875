"""The RequestRate contract (in memory, DynamoDB on moto) and the ImageQuota contract
(SQLite, DynamoDB on moto). Clocks are injected: nothing sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.adapters.dynamodb_quotas import DynamoDBImageQuota, DynamoDBRequestRate
from chalicelib.adapters.memory_rate import MemoryRequestRate
from chalicelib.domain.api_keys import new_key_id
from chalicelib.ports import ImageQuota, RequestRate
from tests.contract.conftest import ManualClock
from tests.fixtures.aws import LABEL_INDEX_TABLE

# A float wait, added to a float clock, may land a hair either side of the exact instant.
EPSILON = 1e-3
THREADS = 8
DAY = "2026-12-02"


def take_burst(rate: RequestRate, key_id: str, count: int) -> list[float | None]:
    return [rate.take(key_id, count) for _ in range(count)]


def run_in_threads(task: Callable[[], Any], tasks: int) -> list[Any]:
    start = threading.Barrier(THREADS)

    def after_start() -> Any:
        start.wait()
        return [task() for _ in range(tasks // THREADS)]

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(after_start) for _ in range(THREADS)]
        return [outcome for future in futures for outcome in future.result()]


# --- RequestRate ---------------------------------------------------------------------------


@pytest.mark.parametrize("per_minute", [7, 120])
def test_a_burst_of_per_minute_passes_and_the_next_waits_about_one_interval(
    request_rate: RequestRate, per_minute: int
) -> None:
    key_id = new_key_id()

    assert take_burst(request_rate, key_id, per_minute) == [None] * per_minute
    wait = request_rate.take(key_id, per_minute)

    assert wait is not None and 0 < wait <= 60 / per_minute + EPSILON


@pytest.mark.parametrize("per_minute", [7, 120])
def test_after_the_announced_wait_one_more_passes_and_the_next_waits_again(
    request_rate: RequestRate, rate_clock: ManualClock, per_minute: int
) -> None:
    key_id = new_key_id()
    take_burst(request_rate, key_id, per_minute)
    wait = request_rate.take(key_id, per_minute)
    assert wait is not None

    rate_clock.advance(wait)

    assert request_rate.take(key_id, per_minute) is None
    again = request_rate.take(key_id, per_minute)
    assert again is not None and 0 < again <= 60 / per_minute + EPSILON


def test_a_refused_request_counts_nothing(
    request_rate: RequestRate, rate_clock: ManualClock
) -> None:
    key_id = new_key_id()
    take_burst(request_rate, key_id, 10)
    wait = request_rate.take(key_id, 10)
    for _ in range(5):
        assert request_rate.take(key_id, 10) == pytest.approx(wait)

    rate_clock.advance(wait or 0)

    assert request_rate.take(key_id, 10) is None


def test_keys_have_buckets_of_their_own(request_rate: RequestRate) -> None:
    busy, quiet = new_key_id(), new_key_id()
    take_burst(request_rate, busy, 5)
    assert request_rate.take(busy, 5) is not None

    assert take_burst(request_rate, quiet, 5) == [None] * 5


def test_half_a_minute_refills_half_the_bucket(
    request_rate: RequestRate, rate_clock: ManualClock
) -> None:
    key_id = new_key_id()
    take_burst(request_rate, key_id, 60)

    rate_clock.advance(30)

    assert take_burst(request_rate, key_id, 60)[:31] == [None] * 30 + [pytest.approx(1.0)]


def test_a_minute_idle_refills_the_whole_bucket_and_no_more(
    request_rate: RequestRate, rate_clock: ManualClock
) -> None:
    key_id = new_key_id()
    take_burst(request_rate, key_id, 20)

    rate_clock.advance(3600)

    assert take_burst(request_rate, key_id, 20) == [None] * 20
    assert request_rate.take(key_id, 20) is not None


def test_a_steady_stream_at_the_rate_passes_for_ever(
    request_rate: RequestRate, rate_clock: ManualClock
) -> None:
    key_id = new_key_id()
    take_burst(request_rate, key_id, 12)  # an empty bucket from here on

    for _ in range(30):
        rate_clock.advance(5)
        assert request_rate.take(key_id, 12) is None


def test_requests_from_many_threads_at_once_pass_per_minute_times_in_all(
    request_rate: RequestRate,
) -> None:
    key_id = new_key_id()

    outcomes = run_in_threads(lambda: request_rate.take(key_id, 20), THREADS * 5)

    assert sum(outcome is None for outcome in outcomes) == 20


def test_the_memory_rate_forgets_buckets_that_are_full_again(rate_clock: ManualClock) -> None:
    rate = MemoryRequestRate(clock=rate_clock)
    for _ in range(1000):
        rate.take(new_key_id(), 60)
    assert len(rate) == 1000

    rate_clock.advance(1)
    rate.take(new_key_id(), 60)

    assert len(rate) == 1


def test_the_dynamodb_rate_admits_a_request_of_an_active_key_in_one_call(
    dynamodb_client: Any, rate_clock: ManualClock
) -> None:
    calls = CountingClient(dynamodb_client)
    rate = DynamoDBRequestRate(calls, LABEL_INDEX_TABLE, clock=rate_clock)
    key_id = new_key_id()
    rate.take(key_id, 10)
    calls.count = 0

    assert rate.take(key_id, 10) is None
    take_burst(rate, key_id, 8)
    assert rate.take(key_id, 10) is not None

    assert calls.count == 10


def test_the_dynamodb_rate_item_expires_an_hour_after_its_last_use(
    dynamodb_client: Any, rate_clock: ManualClock
) -> None:
    rate = DynamoDBRequestRate(dynamodb_client, LABEL_INDEX_TABLE, clock=rate_clock)
    key_id = new_key_id()
    rate.take(key_id, 10)
    rate_clock.advance(600)
    rate.take(key_id, 10)

    item = dynamodb_client.get_item(
        TableName=LABEL_INDEX_TABLE,
        Key={"LabelKey": {"S": f"RATE#{key_id}"}, "Rank": {"S": "BUCKET"}},
    )["Item"]

    assert int(item["ExpiresAt"]["N"]) == int(rate_clock.now) + 3600


# --- ImageQuota ----------------------------------------------------------------------------


def test_reserves_pass_up_to_the_limit_and_count(image_quota: ImageQuota) -> None:
    key_id = new_key_id()

    assert image_quota.reserve(key_id, DAY, 6, 10)
    assert image_quota.reserve(key_id, DAY, 4, 10)

    assert image_quota.used(key_id, DAY) == 10


def test_a_reserve_over_the_limit_is_refused_and_adds_nothing(image_quota: ImageQuota) -> None:
    key_id = new_key_id()
    image_quota.reserve(key_id, DAY, 7, 10)

    assert not image_quota.reserve(key_id, DAY, 4, 10)
    assert image_quota.used(key_id, DAY) == 7
    assert image_quota.reserve(key_id, DAY, 3, 10)


def test_a_reserve_larger_than_the_limit_is_refused_on_a_fresh_day(
    image_quota: ImageQuota,
) -> None:
    key_id = new_key_id()

    assert not image_quota.reserve(key_id, DAY, 11, 10)
    assert image_quota.used(key_id, DAY) == 0


def test_a_key_with_no_images_has_used_none(image_quota: ImageQuota) -> None:
    assert image_quota.used(new_key_id(), DAY) == 0


def test_a_release_gives_the_room_back(image_quota: ImageQuota) -> None:
    key_id = new_key_id()
    image_quota.reserve(key_id, DAY, 10, 10)

    image_quota.release(key_id, DAY, 4)

    assert image_quota.used(key_id, DAY) == 6
    assert image_quota.reserve(key_id, DAY, 4, 10)
    assert not image_quota.reserve(key_id, DAY, 1, 10)


def test_a_release_never_takes_the_count_below_zero(image_quota: ImageQuota) -> None:
    key_id = new_key_id()
    image_quota.reserve(key_id, DAY, 3, 10)

    image_quota.release(key_id, DAY, 5)

    assert image_quota.used(key_id, DAY) == 0
    assert image_quota.reserve(key_id, DAY, 10, 10)
    assert not image_quota.reserve(key_id, DAY, 1, 10)


def test_a_release_on_a_day_without_images_leaves_it_at_zero(image_quota: ImageQuota) -> None:
    key_id = new_key_id()

    image_quota.release(key_id, DAY, 5)

    assert image_quota.used(key_id, DAY) == 0
    assert image_quota.reserve(key_id, DAY, 10, 10)


def test_days_and_keys_count_apart(image_quota: ImageQuota) -> None:
    key_id, other_key = new_key_id(), new_key_id()
    image_quota.reserve(key_id, DAY, 10, 10)

    assert image_quota.reserve(key_id, "2026-12-03", 10, 10)
    assert image_quota.reserve(other_key, DAY, 10, 10)
    assert image_quota.used(key_id, DAY) == 10


def test_reserves_from_many_threads_at_once_never_pass_the_limit(
    image_quota: ImageQuota,
) -> None:
    key_id = new_key_id()

    outcomes = run_in_threads(lambda: image_quota.reserve(key_id, DAY, 3, 50), THREADS * 4)

    assert sum(outcomes) == 16  # 16 times 3 = 48; a 17th would make 51
    assert image_quota.used(key_id, DAY) == 48


def test_the_dynamodb_day_count_expires_two_days_after_its_day(dynamodb_client: Any) -> None:
    quota = DynamoDBImageQuota(dynamodb_client, LABEL_INDEX_TABLE)
    key_id = new_key_id()
    quota.reserve(key_id, DAY, 1, 10)

    item = dynamodb_client.get_item(
        TableName=LABEL_INDEX_TABLE,
        Key={"LabelKey": {"S": f"IMAGES#{key_id}"}, "Rank": {"S": DAY}},
    )["Item"]

    assert int(item["ExpiresAt"]["N"]) == 1_796_428_800  # 2026-12-05T00:00:00Z


class CountingClient:
    """A DynamoDB client that counts the calls made through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.count = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return method(*args, **kwargs)

        return counted
