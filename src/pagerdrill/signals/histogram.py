"""A quantile from a Prometheus histogram's cumulative buckets, the way PromQL's
`histogram_quantile` computes it, so a threshold a team wrote against its Prometheus
means the same here."""

from __future__ import annotations

import math
from collections.abc import Iterable


def parse_le(text: str) -> float:
    """A bucket's `le` label as a number (`+Inf`, `1e0`, `.2` all as Prometheus reads them)."""
    return float(text)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The q-quantile of cumulative `(upper bound, count)` buckets; NaN when it has none.

    PromQL's rules: q below 0 is -Inf and above 1 is +Inf; without a +Inf bucket, with
    fewer than two buckets or with no observations it is NaN. Buckets of the same bound
    are one bucket; counts are made monotonic (a later bucket never counts less than an
    earlier one, as a scrape racing increments can show). Within the bucket the rank
    falls in, observations are taken as spread evenly; the lowest bucket starts at 0
    unless its bound is 0 or below, and a rank in the +Inf bucket is the highest finite
    bound."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    monotonic: list[tuple[float, float]] = []
    highest = -math.inf
    for bound, count in ordered:
        highest = max(highest, count)
        monotonic.append((bound, highest))
    if len(monotonic) < 2:
        return math.nan
    observations = monotonic[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(
        (i for i, (_, count) in enumerate(monotonic[:-1]) if count >= rank), len(monotonic) - 1
    )
    if b == len(monotonic) - 1:
        return monotonic[-2][0]
    if b == 0 and monotonic[0][0] <= 0:
        return monotonic[0][0]
    start, end, count = 0.0, monotonic[b][0], monotonic[b][1]
    if b > 0:
        start = monotonic[b - 1][0]
        count -= monotonic[b - 1][1]
        rank -= monotonic[b - 1][1]
    if count == 0:  # q = 0 over an empty lowest bucket: 0/0, NaN as in PromQL
        return math.nan
    return start + (end - start) * (rank / count)
