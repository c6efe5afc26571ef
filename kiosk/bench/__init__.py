"""Benchmarks of the kiosk's vision parts on named synthetic sets (no downloads, seeded, reproducible)."""

from __future__ import annotations

import statistics
from typing import Any, Dict, Sequence


def timing_summary(values: Sequence[float], digits: int = 1) -> Dict[str, Any]:
    """``n``, median ``p50``, ``p95`` (the value at rank 0.95 n) and ``max`` of timings; ``{"n": 0}`` for none."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), digits),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], digits),
        "max": round(ordered[-1], digits),
    }
