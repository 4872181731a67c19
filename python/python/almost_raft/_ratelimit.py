"""Rate limits for the package's repeated warnings, so that a callback that raises on every
call, or a flood of anything, cannot flood the log."""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Tuple

BURST = 3
"""Warnings of one kind logged in full per period; the rest are counted."""
PERIOD = 1.0
"""Seconds."""


class RateLimit:
    """At most ``burst`` warnings of each kind per ``period`` seconds. The count of those
    suppressed is reported once the period is over: with the next warning of that kind, or by
    :meth:`flush` (called on every event the caller handles, and at the end)."""

    def __init__(
        self, report: Callable[[str, int], None], burst: int = BURST, period: float = PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._report = report
        self._burst = burst
        self._period = period
        self._clock = clock
        self._kinds: Dict[str, Tuple[Optional[float], int, int]] = {}  # start, allowed, suppressed

    def allow(self, kind: str) -> bool:
        """True when a warning of ``kind`` may be logged now."""
        self._flush_kind(kind, self._clock(), force=False)
        start, allowed, suppressed = self._kinds.get(kind, (None, 0, 0))
        if start is None:
            start, allowed = self._clock(), 0
        if allowed < self._burst:
            self._kinds[kind] = (start, allowed + 1, suppressed)
            return True
        self._kinds[kind] = (start, allowed, suppressed + 1)
        return False

    def flush(self, force: bool = False) -> None:
        """Reports what was suppressed in periods that are over (or in any, with ``force``)."""
        now = self._clock()
        for kind in list(self._kinds):
            self._flush_kind(kind, now, force)

    def _flush_kind(self, kind: str, now: float, force: bool) -> None:
        start, _, suppressed = self._kinds.get(kind, (None, 0, 0))
        if start is not None and (force or now - start >= self._period):
            del self._kinds[kind]
            if suppressed:
                self._report(kind, suppressed)
