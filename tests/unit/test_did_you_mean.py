"""One did-you-mean for every "unknown name" message."""

from __future__ import annotations

from pagerdrill.errors import did_you_mean


def test_a_near_miss_is_suggested_and_a_far_one_is_not():
    assert did_you_mean("redsi", ["api", "redis", "worker"]) == "redis"
    assert did_you_mean("zzz", ["api", "redis", "worker"]) is None


def test_the_cutoff_decides_how_alike_a_suggestion_must_be():
    assert did_you_mean("wrk", ["worker"], cutoff=0.5) == "worker"
    assert did_you_mean("wrk", ["worker"], cutoff=0.9) is None


def test_an_unknown_plugin_name_lists_what_is_installed_and_the_closest_one():
    from pagerdrill.plugins import unknown_plugin

    assert unknown_plugin("target", "lcoal", ["local", "compose"]) == (
        "unknown target 'lcoal' (installed: compose, local); did you mean 'local'?"
    )
    assert unknown_plugin("target", "kubernetes", ["local", "compose"]) == (
        "unknown target 'kubernetes' (installed: compose, local)"
    )


def test_a_mistyped_fault_kind_and_target_get_the_did_you_mean_a_mitigation_gets():
    import pytest

    from pagerdrill import faults, targets
    from pagerdrill.errors import BadInputError

    with pytest.raises(BadInputError, match="did you mean 'stop-service'"):
        faults.fault_class("stop-servce")
    with pytest.raises(BadInputError, match="did you mean 'local'"):
        targets.target_class("lcoal")
