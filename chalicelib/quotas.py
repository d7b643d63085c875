"""The quota use case: a key's requests a minute and images a UTC day.

`admit_request` counts one request against the key's rate. `reserve_images` takes room
for a submission's images before they are accepted, so that two submissions at once
cannot both pass the day's limit; the returned reservation's `settle` gives back what was
not accepted after all.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib.domain.errors import TooManyRequests
from chalicelib.domain.models import utc_now
from chalicelib.ports import ImageQuota, RequestRate


class ImageReservation:
    """Room for `count` images of the key on `day` (YYYY-MM-DD, UTC)."""

    def __init__(self, images: ImageQuota, key_id: str, day: str, count: int) -> None:
        self._images = images
        self.key_id = key_id
        self.day = day
        self.count = count
        self._settled = False
        self._lock = threading.Lock()

    def settle(self, accepted: int) -> None:
        """Keep `accepted` images (0 <= accepted <= count) and give back the rest, to the
        day reserved even after midnight. A second call does nothing."""
        if not 0 <= accepted <= self.count:
            raise ValueError(f"accepted must be within 0..{self.count}, not {accepted}")
        with self._lock:
            if self._settled:
                return
            self._settled = True
        if accepted < self.count:
            self._images.release(self.key_id, self.day, self.count - accepted)


class Quotas:
    def __init__(
        self,
        rate: RequestRate,
        images: ImageQuota,
        per_minute: int,
        daily_images: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._rate = rate
        self._images = images
        self._per_minute = per_minute
        self._daily_images = daily_images
        self._clock = clock

    def admit_request(self, key_id: str) -> None:
        """Count one request of the key; TooManyRequests if it is over its rate."""
        wait = self._rate.take(key_id, self._per_minute)
        if wait is None:
            return
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"this API key is over its {self._per_minute} requests a minute; retry in {seconds} s",
            retry_after=seconds,
        )

    def reserve_images(self, key_id: str, count: int) -> ImageReservation:
        """Room for `count` more images of the key today (UTC); TooManyRequests, with the
        seconds until midnight UTC, if the day's quota cannot take them."""
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        now = self._clock().astimezone(UTC)
        day = now.date().isoformat()
        if count == 0 or self._images.reserve(key_id, day, count, self._daily_images):
            return ImageReservation(self._images, key_id, day, count)
        left = max(0, self._daily_images - self._images.used(key_id, day))
        if left == 0:
            message = (
                f"this API key has used its {self._daily_images} images for {day} (UTC);"
                " retry after midnight UTC"
            )
        else:
            message = (
                f"this API key has {left} of its {self._daily_images} images for {day} (UTC)"
                f" left, fewer than the {count} of this request; send at most {left},"
                " or retry after midnight UTC"
            )
        raise TooManyRequests(message, retry_after=_seconds_to_midnight(now))


def _seconds_to_midnight(now: datetime) -> int:
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return math.ceil((midnight - now).total_seconds())
