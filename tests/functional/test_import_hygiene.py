"""The core never imports the UI libraries: each core module, imported alone in a fresh
interpreter, leaves textual, typer and rich unloaded."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import pagerdrill

UI_MODULES = ("textual", "typer", "rich")
UI_LAYERS = ("pagerdrill.cli", "pagerdrill.tui", "pagerdrill.__main__")


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(pagerdrill.__path__, "pagerdrill."):
        if not info.name.startswith(UI_LAYERS):
            names.append(info.name)
    return names


def test_there_are_core_modules_to_check():
    expected = {
        "pagerdrill.workspace",
        "pagerdrill.targets.local",
        "pagerdrill.refstack.api",
        "pagerdrill.drill.engine",
        "pagerdrill.journal",
        "pagerdrill.scenarios.model",
        "pagerdrill.faults.builtin",
        "pagerdrill.signals.probes",
        "pagerdrill.drill.recover",
        "pagerdrill.drill.runner",
        "pagerdrill.faults.storm",
        "pagerdrill.runbooks",
        "pagerdrill.runbooks.model",
        "pagerdrill.runbooks.lint",
        "pagerdrill.runbooks.index",
        "pagerdrill.runbooks.search",
        "pagerdrill.runbooks.validate",
        "pagerdrill.runbooks.scaffold",
        "pagerdrill.escalation.model",
        "pagerdrill.escalation.roster",
        "pagerdrill.escalation.schedules",
        "pagerdrill.escalation.load",
        "pagerdrill.escalation.markdown",
        "pagerdrill.escalation.validate",
        "pagerdrill.escalation.oncall",
        "pagerdrill.escalation.probes",
        "pagerdrill.readiness",
        "pagerdrill.readiness.gate",
        "pagerdrill.readiness.records",
        "pagerdrill.readiness.roster",
        "pagerdrill.readiness.status",
        "pagerdrill.readiness.actions",
        "pagerdrill.readiness.documents",
        "pagerdrill.readiness.drills",
        "pagerdrill.readiness.matrix",
        "pagerdrill.readiness.quiz",
        "pagerdrill.readiness.access",
        "pagerdrill.readiness.signing",
        "pagerdrill.readiness.verify",
        "pagerdrill.readiness.reviews",
    }
    assert expected <= set(core_modules())


@pytest.mark.parametrize("module", core_modules())
def test_core_module_does_not_import_ui_libraries(module):
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print([m for m in {UI_MODULES!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"SERVICE_NAME": "hygiene-check", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "[]", f"{module} loads {result.stdout.strip()}"
