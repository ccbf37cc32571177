"""One did-you-mean for every "unknown name" message."""

from __future__ import annotations

from pagerdrill.errors import did_you_mean


def test_a_near_miss_is_suggested_and_a_far_one_is_not():
    assert did_you_mean("redsi", ["api", "redis", "worker"]) == "redis"
    assert did_you_mean("zzz", ["api", "redis", "worker"]) is None


def test_the_cutoff_decides_how_alike_a_suggestion_must_be():
    assert did_you_mean("wrk", ["worker"], cutoff=0.5) == "worker"
    assert did_you_mean("wrk", ["worker"], cutoff=0.9) is None
