"""Secrets never reach a drill journal (teams keep `drills/` in git): what a scenario or a
fault marks secret, and every parameter named like a password, token or secret, is
journalled masked; the undo record keeps only what revert needs; the stack's state file
is private to its owner."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest
from test_drill_safety import start_waiting_drill

from drilling import assert_stack_clean, autopilot_drill, cli, wait_for_event
from helpers import TEST_ENV, endpoint, http_json, wait_for
from pagerdrill.faults.builtin import RestartWithEnv
from pagerdrill.journal.redact import MASK, masked_scenario_text, secret_leaves
from pagerdrill.scenarios.model import load_scenario, scenario_secrets

REPO = Path(__file__).resolve().parents[2]
SIGNIN = REPO / "scenarios" / "signin-failure-spike.yaml"
DEFAULT_BAD = "not-the-admin-password"  # the scenario's own wrong password
RIGHT = TEST_ENV["api"]["ADMIN_DEFAULT_PASSWORD"]  # the test workspace's admin password


def test_a_parameter_marked_secret_is_masked_in_the_journalled_text(tmp_path):
    text = (
        SIGNIN.read_text()
        .replace(
            "  bad_password: not-the-admin-password",
            "  bad_password: not-the-admin-password\n"
            "  sesame: {value: open-sesame-99, secret: true}",
        )
        .replace("    env_from_binding:", "    env: {GREETING: '${sesame}'}\n    env_from_binding:")
    )
    path = tmp_path / "marked.yaml"
    path.write_text(text)
    sc = load_scenario(path)
    assert sc.params["sesame"] == "open-sesame-99"  # a marked parameter is used by its value
    assert sc.secret_params == {"sesame"}
    values, names = scenario_secrets(sc)
    # GREETING is no secret by its name: the mark alone makes its value one
    assert names == {"sesame", "bad_password"}
    assert {"open-sesame-99", DEFAULT_BAD} <= values
    masked = masked_scenario_text(sc.text, names, values)
    assert "open-sesame-99" not in masked and DEFAULT_BAD not in masked
    assert f"  bad_password: {MASK}" in masked


def test_an_overridden_secret_parameter_masks_its_default_too():
    sc = load_scenario(SIGNIN, {"bad_password": "zq-override-4417"})
    values, names = scenario_secrets(sc)
    masked = masked_scenario_text(sc.text, names, values)
    assert "zq-override-4417" not in masked and DEFAULT_BAD not in masked
    assert "admin_password_env" in masked  # the rest of the scenario stays readable


def test_a_fault_kind_declares_its_secret_params_and_names_mark_the_rest():
    params = {"env_from_binding": {"admin_password_env": "x1-wrong"},
              "env": {"API_TOKEN": "t0k3n", "GAME_RATE": "5"}}  # fmt: skip
    assert RestartWithEnv.secret_values(params) == {"x1-wrong", "t0k3n"}
    assert secret_leaves({"rate": 5, "mode": "fast"}) == set()


def _no_secret_in(raw: bytes, *secrets: str) -> None:
    for secret in secrets:
        assert secret.encode() not in raw, f"{secret} is in the journal"


@pytest.mark.stack
def test_a_signin_drill_journals_its_wrong_password_nowhere_nor_exports_it(stack):
    root = stack.workspace.root
    summary, evs = autopilot_drill(root, "signin-failure-spike", "-p", "bad_password=zq-pw-4417")
    journal = Path(summary["journal"])
    _no_secret_in(journal.read_bytes(), "zq-pw-4417", DEFAULT_BAD)
    started = evs[0]
    assert started["scenario"]["params"]["bad_password"] == MASK
    undo = next(e for e in evs if e["type"] == "fault.undo")
    assert undo["params"] == {"env_from_binding": {"admin_password_env": MASK}}
    # revert needs only the names of the overridden variables, never their values
    assert undo["undo"] == {"service": "api", "previous": {"ADMIN_DEFAULT_PASSWORD": None}}
    assert summary["recovery_verified"]
    for fmt in ("slack", "markdown", "json", "html"):
        out = cli("drills", "export", summary["drill"], "--format", fmt, "-w", str(root))
        assert out.returncode == 0, out.stderr
        assert "zq-pw-4417" not in out.stdout and DEFAULT_BAD not in out.stdout, fmt
    assert_stack_clean(stack)


@pytest.mark.stack
def test_recover_after_kill_9_restores_the_right_password_from_a_masked_journal(stack, tmp_path):
    proc, journal = start_waiting_drill(stack, tmp_path, "signin-failure-spike")
    try:
        wait_for_event(journal, "fault.injected")
        wait_for(lambda: "ADMIN_DEFAULT_PASSWORD" in stack.overrides("api"), 15, "override")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    _no_secret_in(journal.read_bytes(), DEFAULT_BAD)
    api = endpoint(stack, "api")
    status, _ = http_json(f"{api}/auth/sign-in", {"username": "admin", "password": RIGHT})
    assert status == 401  # the fault is still in
    done = cli("recover", "--json", "-w", str(stack.workspace.root))
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout)[0]["reverted"] == ["bad-password"]
    assert_stack_clean(stack)
    status, body = http_json(
        f"{endpoint(stack, 'api')}/auth/sign-in",
        {"username": "admin", "password": RIGHT},
    )
    assert status == 200 and body["token"]
    _no_secret_in(journal.read_bytes(), DEFAULT_BAD)


@pytest.mark.stack
def test_the_stack_state_file_is_private_to_its_owner(stack):
    stack.restart("api", {"ADMIN_DEFAULT_PASSWORD": "mode-check-pw"})  # a rewrite of it
    try:
        assert stat.S_IMODE(os.stat(stack.state_path).st_mode) == 0o600
        assert not list(stack.state_dir.glob("stack.tmp.*"))
    finally:
        stack.restart("api", reset_env=True)
    assert stat.S_IMODE(os.stat(stack.state_path).st_mode) == 0o600
