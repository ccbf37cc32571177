"""The compose target's safety decisions, tested without a Docker Engine and without
opening a connection: which Docker hosts are refused, bad compose settings, and the
label check that keeps every action inside the named project."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from helpers import REPO, pagerdrill_cli
from pagerdrill.errors import BadInputError, ConfigError, StackError
from pagerdrill.refstack.spec import REFERENCE_SIGNALS
from pagerdrill.targets.compose import ComposeTarget, compose_variables
from pagerdrill.targets.dockerhost import (
    check_docker_host,
    configured_context,
    decide_docker_host,
)
from pagerdrill.workspace import load_workspace


@pytest.mark.parametrize(
    ("environ", "context", "local"),
    [
        ({}, None, True),
        ({}, "default", True),
        ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, None, True),
        ({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, "default", True),
        ({"DOCKER_HOST": "tcp://203.0.113.9:2376"}, None, False),
        ({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, None, False),  # TCP to anything
        ({"DOCKER_HOST": "tcp://localhost:2375"}, None, False),
        ({"DOCKER_HOST": "ssh://ops@build-box"}, None, False),
        ({"DOCKER_HOST": "ssh://localhost"}, None, False),
        ({"DOCKER_HOST": "http://203.0.113.9:2375"}, None, False),
        ({"DOCKER_HOST": "203.0.113.9:2375"}, None, False),  # no scheme: not a socket
        ({}, "prod-cluster", False),  # the CLI's current context
        ({"DOCKER_CONTEXT": "staging"}, None, False),
        ({"DOCKER_CONTEXT": "default"}, "prod", True),  # the variable wins over the config
        ({"DOCKER_CONTEXT": "default"}, None, True),
        # the SDK would use the socket, the compose CLI perhaps the context: refused
        ({"DOCKER_HOST": "unix:///var/run/docker.sock", "DOCKER_CONTEXT": "prod"}, None, False),
    ],
)
def test_compose_docker_host_decision(environ, context, local):
    decision = decide_docker_host(environ, context, allow_remote=False)
    assert decision.local is local
    assert decision.allowed is local
    allowed = decide_docker_host(environ, context, allow_remote=True)
    assert allowed.allowed and allowed.local is local


def test_compose_refusal_names_the_host_and_the_flag_but_no_credentials():
    decision = decide_docker_host(
        {"DOCKER_HOST": "tcp://admin:hunter2@203.0.113.9:2376"}, None, False
    )
    message = decision.refusal()
    assert "DOCKER_HOST=tcp://203.0.113.9:2376" in message
    assert "--allow-remote-docker" in message
    assert "hunter2" not in message and "admin" not in message
    with pytest.raises(BadInputError) as err:
        check_docker_host(False, {"DOCKER_HOST": "ssh://ops@build-box:22"})
    assert "ssh://ops@build-box:22" in str(err.value) and err.value.exit_code == 2
    context = decide_docker_host({}, "prod", False).refusal()
    assert "docker context 'prod'" in context


def test_compose_current_context_is_read_from_the_docker_config(tmp_path):
    assert configured_context({"DOCKER_CONFIG": str(tmp_path)}) is None
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "prod"}))
    assert configured_context({"DOCKER_CONFIG": str(tmp_path)}) == "prod"
    (tmp_path / "config.json").write_text("{not json")
    assert configured_context({"DOCKER_CONFIG": str(tmp_path)}) is None


def compose_workspace(root: Path, project: str = "pdtest-safety", **compose) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "compose.yml").write_text("services:\n  api:\n    image: x\n")
    config = {
        "version": 1,
        "target": "compose",
        "compose": {"project": project, "files": ["compose.yml"], **compose},
        "roles": {"api": {"service": "api"}},
    }
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


# Any connection or process the CLI starts is recorded and refused: a refusal must come
# before the docker SDK or the compose CLI is ever reached.
GUARD = textwrap.dedent(
    """
    import sys
    def guard(event, args):
        if event == "socket.connect":
            raise SystemExit(f"CONNECTION ATTEMPTED: {args[1]!r}")
        if event in ("subprocess.Popen", "os.exec", "os.posix_spawn"):
            raise SystemExit(f"PROCESS STARTED: {args!r}")
    sys.addaudithook(guard)
    sys.argv = ["pagerdrill", *sys.argv[1:]]
    from pagerdrill.cli import main
    main()
    """
)


@pytest.mark.parametrize(
    ("command", "environ"),
    [
        (["stack", "up"], {"DOCKER_HOST": "tcp://203.0.113.9:2376"}),
        (["stack", "status"], {"DOCKER_CONTEXT": "prod-cluster"}),
        (
            ["run", "bullmq-backpressure", "--headless", "--engineer", "x", "--autopilot"],
            {"DOCKER_HOST": "ssh://ops@203.0.113.9"},
        ),
        (["recover"], {"DOCKER_HOST": "tcp://127.0.0.1:2375"}),
        (["scenarios", "check"], {"DOCKER_HOST": "tcp://203.0.113.9:2376"}),
        (
            ["drill", "--scenario", "bullmq-backpressure", "--engineer", "x"],
            {"DOCKER_HOST": "tcp://203.0.113.9:2376"},
        ),
    ],
    ids=[
        "stack-up-tcp",
        "stack-status-context",
        "run-ssh",
        "recover-tcp-loopback",
        "check",
        "drill-tui-tcp",
    ],
)
def test_compose_cli_refuses_a_remote_docker_host_with_exit_2_and_no_connection(
    tmp_path, command, environ
):
    root = compose_workspace(tmp_path / "ws")
    (root / "scenarios").symlink_to(REPO / "scenarios")
    done = subprocess.run(
        [sys.executable, "-c", GUARD, *command, "-w", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **environ},
        check=False,
    )
    assert done.returncode == 2, done.stderr + done.stdout
    assert "CONNECTION ATTEMPTED" not in done.stderr + done.stdout
    assert "PROCESS STARTED" not in done.stderr + done.stdout
    assert "refusing to drill a Docker Engine that is not local" in done.stderr
    assert "--allow-remote-docker" in done.stderr
    assert "Traceback" not in done.stderr


def test_compose_target_refuses_before_connecting_and_accepts_the_flag(tmp_path):
    ws = load_workspace(compose_workspace(tmp_path / "ws"))
    remote = {"DOCKER_HOST": "tcp://203.0.113.9:2376"}
    with pytest.raises(BadInputError, match="not local"):
        ComposeTarget(ws, environ=remote)
    target = ComposeTarget(ws, environ=remote, allow_remote_docker=True)
    assert target._client is None  # nothing connected by building it
    assert not target.host.local and target.host.allowed


@pytest.mark.parametrize(
    ("compose", "expected"),
    [
        (
            {"project": "Team_Stack"},
            ":5: compose.project: Value error, 'Team_Stack' is not a compose project name",
        ),
        ({"project": "ok", "files": []}, ":6: compose.files: List should have at least 1 item"),
        (
            {"project": "ok", "startup_timeout_s": 0},
            ":6: compose.startup_timeout_s: Input should be greater than 0",
        ),
        ({"project": "ok", "fils": ["x"]}, "compose.fils: unknown key (did you mean 'files'?)"),
    ],
)
def test_compose_bad_settings_name_the_file_and_line(tmp_path, compose, expected):
    root = tmp_path / "ws"
    root.mkdir()
    config = {"version": 1, "target": "compose", "roles": {}, "compose": compose}
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_workspace(root)
    assert expected in str(err.value)
    if "Team_Stack" in expected:  # and the CLI says so, exit code 2, no traceback
        done = pagerdrill_cli("stack", "status", "-w", str(root), timeout=60)
        assert done.returncode == 2 and expected in done.stderr
        assert "Traceback" not in done.stderr


def test_compose_missing_compose_file_is_named_with_its_line(tmp_path):
    root = compose_workspace(tmp_path / "ws")
    (root / "compose.yml").unlink()
    with pytest.raises(ConfigError) as err:
        ComposeTarget(load_workspace(root), environ={})
    assert f"pagerdrill.yaml:6: compose.files.0: {root / 'compose.yml'} does not exist" in str(
        err.value
    )


def test_compose_label_check_refuses_a_container_of_another_project(tmp_path):
    target = ComposeTarget(load_workspace(compose_workspace(tmp_path / "ws")), environ={})
    labels = {"com.docker.compose.project": "pdtest-safety", "com.docker.compose.service": "api"}
    mine = {"Name": "/x", "Config": {"Labels": labels}}
    assert target._checked(mine, "api") is mine
    for project, service in (("other", "api"), ("pdtest-safety", "rt"), (None, None)):
        labels = {"com.docker.compose.project": project, "com.docker.compose.service": service}
        attrs = {"Name": "/impostor", "Config": {"Labels": labels}}
        with pytest.raises(StackError, match="not touching it"):
            target._checked(attrs, "api")


def test_compose_variables_are_found_but_not_escaped_dollars_or_comments():
    text = textwrap.dedent(
        """
        # ${COMMENTED}
        image: ${IMAGE:-redis:7}
        ports: ["127.0.0.1:$API_PORT:8080"]
        command: echo $$HOME ${REDIS_PORT?need it}
        """
    )
    assert compose_variables([text]) == ["IMAGE", "API_PORT", "REDIS_PORT"]


def test_compose_override_file_escapes_dollars_and_names_the_variables(tmp_path):
    root = compose_workspace(tmp_path / "ws")
    (root / "compose.yml").write_text('version: "2.4"\nservices:\n  api:\n    image: x\n')
    target = ComposeTarget(load_workspace(root), environ={})
    target._write_overrides({"api": {"ADMIN_DEFAULT_PASSWORD": "a$b'c"}, "rt": {}})
    doc = yaml.safe_load(target.override_path.read_text())
    assert doc == {
        "version": "2.4",
        "services": {
            "api": {
                "environment": {"ADMIN_DEFAULT_PASSWORD": "a$$b'c"},
                "labels": {"org.pagerdrill.env-overrides": "ADMIN_DEFAULT_PASSWORD"},
            }
        },
    }
    assert target.override_path.stat().st_mode & 0o077 == 0  # it may hold a password
    target._write_overrides({"api": {}})
    assert not target.override_path.exists()


def test_compose_scenarios_check_without_an_engine_says_what_only_the_stack_can_tell(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "compose.yml").write_text("services:\n  backend:\n    image: x\n")
    config = {
        "version": 1,
        "target": "compose",
        "compose": {"project": "pdtest-nostack", "files": ["compose.yml"]},
        "roles": {
            "api": {"service": "backend", "url": "http://127.0.0.1:9/"},
            "traffic": {"service": "backend", "url": "http://127.0.0.1:9/"},
            "cache": {"service": "backend"},
        },
        "signals": REFERENCE_SIGNALS,
    }
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "scenarios").symlink_to(REPO / "scenarios")
    done = subprocess.run(
        [sys.executable, "-m", "pagerdrill", "scenarios", "check", "--json", "-w", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        },
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    doc = json.loads(done.stdout)
    assert doc["stack_checked"] is False and "could not be asked" in doc["note"]
    report = {s["scenario"]: s for s in doc["scenarios"]}
    # every detail given by the bindings: nothing missing, nothing unknown
    assert report["api-500-injection"]["runnable"], report["api-500-injection"]
    signin = report["signin-failure-spike"]
    assert signin["missing"] == [
        "roles.api.admin_password_env: no variable that holds the admin password known for "
        "service backend (needed by fault bad-password)"
    ]
    flush = report["redis-cache-flush"]
    assert "role queue is not bound (set roles.queue.service)" in flush["missing"]
    assert any(
        line.startswith(
            "roles.cache.redis_url: no Redis URL known for service backend "
            "(needed by fault flushdb)"
        )
        and "known once the stack is up" in line
        for line in flush["unknown_until_up"]
    )
    assert "role rt is not bound (set roles.rt.service)" in report["ws-handshake-storm"]["missing"]


def test_compose_scenarios_check_on_the_local_workspace_runs_everything(tmp_path):
    from pagerdrill.drill.engine import role_bindings
    from pagerdrill.scenarios.check import check_workspace

    ws = load_workspace(REPO)
    results = check_workspace(
        REPO, role_bindings(ws), None, target_gives_addresses=True, signals=ws.config.signals
    )
    assert {r.name for r in results} >= {"bullmq-backpressure", "signin-failure-spike"}
    assert all(r.runnable for r in results), [(r.name, r.missing) for r in results]
