"""Quotas, the use case: refusals with their Retry-After and messages, and reservations
that give back what was not accepted. On the real local adapters, with injected clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.adapters.memory_rate import MemoryRequestRate
from chalicelib.adapters.sqlite import SqliteDatabase
from chalicelib.adapters.sqlite_quota import SqliteImageQuota
from chalicelib.domain.api_keys import new_key_id
from chalicelib.domain.errors import TooManyRequests
from chalicelib.quotas import Quotas

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOON) -> None:
        self.now = now
        self.seconds = 1_000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def images(database: SqliteDatabase) -> SqliteImageQuota:
    return SqliteImageQuota(database)


def quotas(
    clock: Clock, images: SqliteImageQuota, per_minute: int = 600, daily_images: int = 10
) -> Quotas:
    rate = MemoryRequestRate(clock=clock.monotonic)
    return Quotas(rate, images, per_minute, daily_images, clock=clock)


# --- requests --------------------------------------------------------------------------------


def test_requests_within_the_rate_are_admitted(clock: Clock, images: SqliteImageQuota) -> None:
    limits = quotas(clock, images, per_minute=5)
    key_id = new_key_id()
    for _ in range(5):
        limits.admit_request(key_id)


@pytest.mark.parametrize(("per_minute", "retry_after"), [(600, 1), (7, 9), (1, 60)])
def test_a_request_over_the_rate_waits_the_interval_rounded_up_to_whole_seconds(
    clock: Clock, images: SqliteImageQuota, per_minute: int, retry_after: int
) -> None:
    limits = quotas(clock, images, per_minute=per_minute)
    key_id = new_key_id()
    for _ in range(per_minute):
        limits.admit_request(key_id)

    with pytest.raises(TooManyRequests) as refused:
        limits.admit_request(key_id)

    assert refused.value.retry_after == retry_after
    assert refused.value.message == (
        f"this API key is over its {per_minute} requests a minute; retry in {retry_after} s"
    )


def test_a_refusal_names_no_key(clock: Clock, images: SqliteImageQuota) -> None:
    limits = quotas(clock, images, per_minute=1, daily_images=0)
    key_id = new_key_id()
    limits.admit_request(key_id)

    with pytest.raises(TooManyRequests) as over_rate:
        limits.admit_request(key_id)
    with pytest.raises(TooManyRequests) as over_quota:
        limits.reserve_images(key_id, 1)

    assert key_id not in over_rate.value.message
    assert key_id not in over_quota.value.message


# --- images ------------------------------------------------------------------------------------


def test_images_within_the_days_quota_are_reserved_for_today_utc(
    clock: Clock, images: SqliteImageQuota
) -> None:
    clock.now = datetime(2026, 12, 3, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    key_id = new_key_id()

    reservation = quotas(clock, images).reserve_images(key_id, 4)

    assert (reservation.day, reservation.count) == ("2026-12-02", 4)
    assert images.used(key_id, "2026-12-02") == 4


def test_a_used_up_day_refuses_until_midnight_utc(clock: Clock, images: SqliteImageQuota) -> None:
    clock.now = datetime(2026, 12, 2, 23, 59, 30, 500_000, tzinfo=UTC)
    limits = quotas(clock, images, daily_images=10)
    key_id = new_key_id()
    limits.reserve_images(key_id, 10)

    with pytest.raises(TooManyRequests) as refused:
        limits.reserve_images(key_id, 1)

    assert refused.value.retry_after == 30
    assert refused.value.message == (
        "this API key has used its 10 images for 2026-12-02 (UTC); retry after midnight UTC"
    )
    assert images.used(key_id, "2026-12-02") == 10


def test_a_request_larger_than_the_room_left_says_how_many_fit(
    clock: Clock, images: SqliteImageQuota
) -> None:
    limits = quotas(clock, images, daily_images=10)
    key_id = new_key_id()
    limits.reserve_images(key_id, 7)

    with pytest.raises(TooManyRequests) as refused:
        limits.reserve_images(key_id, 5)

    assert refused.value.retry_after == 12 * 3600
    assert refused.value.message == (
        "this API key has 3 of its 10 images for 2026-12-02 (UTC) left, fewer than the 5 of"
        " this request; send at most 3, or retry after midnight UTC"
    )
    assert images.used(key_id, "2026-12-02") == 7


def test_at_midnight_a_refusal_waits_the_whole_day(clock: Clock, images: SqliteImageQuota) -> None:
    clock.now = datetime(2026, 12, 2, tzinfo=UTC)
    limits = quotas(clock, images, daily_images=0)

    with pytest.raises(TooManyRequests) as refused:
        limits.reserve_images(new_key_id(), 1)

    assert refused.value.retry_after == 86_400


def test_a_new_utc_day_has_its_whole_quota(clock: Clock, images: SqliteImageQuota) -> None:
    limits = quotas(clock, images, daily_images=10)
    key_id = new_key_id()
    limits.reserve_images(key_id, 10)

    clock.now += timedelta(hours=12)

    assert limits.reserve_images(key_id, 10).day == "2026-12-03"


def test_settling_all_accepted_keeps_the_whole_reservation(
    clock: Clock, images: SqliteImageQuota
) -> None:
    key_id = new_key_id()
    quotas(clock, images).reserve_images(key_id, 4).settle(4)

    assert images.used(key_id, "2026-12-02") == 4


def test_settling_gives_back_what_was_not_accepted(clock: Clock, images: SqliteImageQuota) -> None:
    key_id = new_key_id()
    reservation = quotas(clock, images).reserve_images(key_id, 5)

    reservation.settle(2)

    assert images.used(key_id, "2026-12-02") == 2


def test_settling_a_second_time_does_nothing(clock: Clock, images: SqliteImageQuota) -> None:
    key_id = new_key_id()
    limits = quotas(clock, images)
    reservation = limits.reserve_images(key_id, 5)
    limits.reserve_images(key_id, 3)

    reservation.settle(0)
    reservation.settle(0)
    reservation.settle(5)

    assert images.used(key_id, "2026-12-02") == 3


def test_settling_after_midnight_gives_back_to_the_day_reserved(
    clock: Clock, images: SqliteImageQuota
) -> None:
    key_id = new_key_id()
    limits = quotas(clock, images)
    reservation = limits.reserve_images(key_id, 5)
    clock.now += timedelta(days=1)
    limits.reserve_images(key_id, 5)

    reservation.settle(1)

    assert images.used(key_id, "2026-12-02") == 1
    assert images.used(key_id, "2026-12-03") == 5


@pytest.mark.parametrize("accepted", [-1, 6])
def test_settling_more_than_reserved_or_less_than_none_is_an_error(
    clock: Clock, images: SqliteImageQuota, accepted: int
) -> None:
    key_id = new_key_id()
    reservation = quotas(clock, images).reserve_images(key_id, 5)

    with pytest.raises(ValueError):
        reservation.settle(accepted)

    assert images.used(key_id, "2026-12-02") == 5


def test_reserving_no_images_passes_even_on_a_used_up_day(
    clock: Clock, images: SqliteImageQuota
) -> None:
    limits = quotas(clock, images, daily_images=0)

    limits.reserve_images(new_key_id(), 0).settle(0)
