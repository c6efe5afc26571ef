"""Bounded reporting of faults that repeat: a camera that is gone, a model that fails on every frame.

A fault that happens on every frame or every retry must not write a line each time (a deleted camera
folder once wrote half a million lines in 12 s): :class:`RateLimit` lets one report of a kind through per
interval and counts the ones it held back, so the next report can say how many there were.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional


class RateLimit:
    """At most one report per ``key`` every ``interval`` seconds.

    ``ready(key)`` is None while the last report of ``key`` is more recent than ``interval`` (the call
    is counted); otherwise it returns how many calls were held back since that report, and the caller
    reports now. ``reset(key)`` forgets ``key``: use it on a change of state, which is always reported.
    """

    def __init__(self, interval: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = float(interval)
        self.clock = clock
        self._last: Dict[str, float] = {}
        self._held: Dict[str, int] = {}

    def ready(self, key: str = "") -> Optional[int]:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)

    def reset(self, key: str = "") -> None:
        self._last.pop(key, None)
        self._held.pop(key, None)
