"""RequestRate in process memory: local mode's rate limiter, one token bucket per key.

A bucket holds up to `per_minute` tokens and refills at `per_minute / 60` a second; a
request takes one. Memory stays bounded by the keys active in the last minute: buckets
are kept in order of last use, and each take forgets the least recently used ones that
have refilled completely (a forgotten bucket and a new one are the same: full).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# A wait shorter than this is float rounding (a clock moved on by exactly the wait it was
# told can land a hair short of the token), not a reason to refuse.
NOISE_SECONDS = 1e-6


@dataclass
class _Bucket:
    tokens: float
    at: float
    per_minute: int

    def refilled(self, now: float) -> float:
        rate = self.per_minute / 60
        return min(float(self.per_minute), self.tokens + max(0.0, now - self.at) * rate)


class MemoryRequestRate:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key_id: str, per_minute: int) -> float | None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, not {per_minute}")
        with self._lock:
            now = self._clock()
            self._forget_full_buckets(now)
            bucket = self._buckets.pop(key_id, None)
            tokens = bucket.refilled(now) if bucket else float(per_minute)
            tokens = min(tokens, float(per_minute))  # the limit may have been lowered
            wait = max(0.0, 1 - tokens) * 60 / per_minute  # until it has a whole token
            admitted = wait < NOISE_SECONDS
            if admitted:
                tokens = max(0.0, tokens - 1)
            self._buckets[key_id] = _Bucket(tokens, now, per_minute)  # now the most recent
            return None if admitted else wait

    def __len__(self) -> int:
        """How many buckets are held (the ones not known to be full)."""
        with self._lock:
            return len(self._buckets)

    def _forget_full_buckets(self, now: float) -> None:
        # Oldest first. One not full yet was used in the last minute, as were all after it.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if oldest.refilled(now) < oldest.per_minute:
                return
            self._buckets.popitem(last=False)
