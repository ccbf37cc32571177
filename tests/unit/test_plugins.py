"""The one entry-point loader of fault kinds, mitigation actions and targets."""

from __future__ import annotations

import pytest

from pagerdrill.errors import BadInputError
from pagerdrill.plugins import PluginLoadError, load_plugin, plugin_points


def test_a_plugin_that_fails_to_import_is_reported_on_stderr_and_refused(capsys):
    with pytest.raises(PluginLoadError) as err:
        load_plugin("fault", "gone", "pagerdrill.no_such_module:Thing")
    assert isinstance(err.value, BadInputError) and err.value.exit_code == 2
    assert isinstance(err.value.cause, ModuleNotFoundError)
    assert "pagerdrill: fault plugin 'gone' failed to load: ModuleNotFoundError(" in (
        capsys.readouterr().err
    )


def test_a_plugin_is_the_attribute_its_entry_point_names():
    from pagerdrill.targets.local import LocalTarget

    assert load_plugin("target", "local", "pagerdrill.targets.local:LocalTarget") is LocalTarget


def test_the_built_ins_are_listed_even_when_no_entry_point_names_them():
    points = plugin_points("pagerdrill.no-such-group", {"mine": "pkg.mod:Mine"})
    assert points == {"mine": "pkg.mod:Mine"}
