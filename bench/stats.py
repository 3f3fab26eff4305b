"""Small statistics over timings and progress events (pure Python, so CI can test them)."""

from __future__ import annotations

import math
from typing import Iterable, Sequence


def median(values: Iterable[float]) -> float | None:
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def seconds_per_step(events: Sequence[tuple[float, int]]) -> float | None:
    """s/step from (time, step) progress events of one sampler run.

    Uses the first and last event only: step 1 includes loading and any compilation, so it is excluded by
    starting from the first reported step, and throttled reporting (the handler forwards at most two events a
    second) does not matter.
    """
    pts = sorted(events, key=lambda e: e[1])
    if len(pts) < 2 or pts[-1][1] == pts[0][1]:
        return None
    (t0, s0), (t1, s1) = pts[0], pts[-1]
    return (t1 - t0) / (s1 - s0)


def ratio(baseline: float | None, value: float | None) -> float | None:
    """How many times faster `value` is than `baseline` (>1 means faster)."""
    if not baseline or not value:
        return None
    return baseline / value


def psnr(max_abs_range: float, mse: float) -> float:
    if mse <= 0:
        return math.inf
    return 10 * math.log10(max_abs_range ** 2 / mse)
