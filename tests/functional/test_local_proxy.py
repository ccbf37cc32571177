"""The local target's http-proxy fault on a real reference stack: the api's port is
handed to the proxy and back with no moment at which a connection is refused, and a
handover that stopped half-way is put right by the removal that `recover` runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from drilling import assert_stack_clean
from helpers import pid_alive, wait_for, write_workspace
from pagerdrill.errors import StackError
from pagerdrill.faults.httpproxy import proxy_script
from pagerdrill.targets.local import LocalTarget
from pagerdrill.targets.localprocs import _free_port
from pagerdrill.targets.localproxy import pids_launched
from pagerdrill.workspace import load_workspace

pytestmark = pytest.mark.stack

RULES = {"path": "^/api/promotions", "status": 500}


@dataclass
class Answers:
    """What clients that open a new connection for every request saw, in order."""

    seen: list[tuple[float, str, int | str]] = field(default_factory=list)

    def of(self, path: str, since: float = 0.0) -> list[int | str]:
        return [what for t, p, what in self.seen if p == path and t >= since]

    @property
    def failures(self) -> list[tuple[float, str, int | str]]:
        """Requests that got no HTTP answer at all, or one the fault does not explain."""
        return [
            (t, p, what)
            for t, p, what in self.seen
            if not isinstance(what, int) or (what >= 400 and p != "/api/promotions")
        ]


@contextmanager
def clients(target: LocalTarget, paths: tuple[str, ...]) -> Iterator[Answers]:
    base = target.service_endpoints("api")["http"]
    answers = Answers()
    stop = threading.Event()

    def ask(path: str) -> None:
        # no keep-alive: every request is a new connection, as many clients make
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=5) as c:
            while not stop.is_set():
                try:
                    what: int | str = c.get(base + path).status_code
                except httpx.HTTPError as exc:
                    what = repr(exc)
                answers.seen.append((time.monotonic(), path, what))
                time.sleep(0.005)

    threads = [threading.Thread(target=ask, args=(p,), daemon=True) for p in paths]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def api_entry(target: LocalTarget) -> dict:
    return json.loads(target.state_path.read_text())["services"]["api"]


def listeners(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (SO_REUSEPORT lets several)."""
    want = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == want and row.split()[3] == "0A")


@pytest.fixture(autouse=True)
def _put_back(stack):
    """The tests share one stack: whatever one leaves half-way, the next does not see."""
    yield
    entry = api_entry(stack)
    if {"proxy", "listen_port", "incoming", "retiring"} & set(entry):
        stack.remove_http_proxy("api")


def test_the_proxy_takes_the_api_s_port_and_gives_it_back_with_no_connection_refused(stack):
    first = api_entry(stack)
    assert first["reuse_port"]
    with clients(stack, ("/api/markets/1", "/api/promotions", "/healthz")) as answers:
        wait_for(lambda: len(answers.seen) > 20, 10, "clients answered")
        t_in = time.monotonic()
        put = stack.insert_http_proxy("api", RULES, proxy_script())
        moved = api_entry(stack)
        wait_for(lambda: answers.of("/api/promotions", t_in).count(500) >= 3, 15, "500s")
        taken = stack.remove_http_proxy("api")
        t_back = time.monotonic()
        wait_for(lambda: answers.of("/api/promotions", t_back).count(200) >= 3, 15, "200s")
    back = api_entry(stack)
    assert put["handover"] and taken["handover"]
    # a new instance each way; the one it replaced is gone, not left running beside it
    assert len({first["pid"], moved["pid"], back["pid"]}) == 3
    assert moved["listen_port"] == put["service_port"] != first["port"]
    assert not pid_alive(first["pid"]) and not pid_alive(moved["pid"])
    assert not pid_alive(put["proxy_pid"])
    assert not {"proxy", "listen_port", "retiring", "incoming"} & set(back)
    # The old way (stop the api, start it on another port, start the proxy) refused
    # every connection for a second or more each way: dozens at this rate. SO_REUSEPORT
    # leaves one race: a connection the kernel queued on a socket in the instant it
    # closes is reset (two closes here), so a few such failures are allowed, not a run.
    assert len(answers.failures) <= 3, answers.failures
    assert answers.of("/api/promotions", t_in)[-1] == 200
    assert 500 not in answers.of("/api/promotions", 0)[:5]  # nothing failed before
    assert 500 not in answers.of("/api/promotions", t_back + 1)
    assert answers.of("/api/markets/1", t_in).count(200) >= 3
    assert listeners(back["port"]) == 1  # the api alone: no stray beside it
    assert_stack_clean(stack)


def sign_in(target: LocalTarget) -> str:
    base = target.service_endpoints("api")["http"]
    body = {"username": "admin", "password": target.environment("api")["ADMIN_DEFAULT_PASSWORD"]}
    answer = httpx.post(f"{base}/auth/sign-in", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def bet(target: LocalTarget, token: str) -> int:
    base = target.service_endpoints("api")["http"]
    headers = {"Authorization": f"Bearer {token}"}
    body = {"market_id": 1, "stake": 2.5}
    return httpx.post(f"{base}/api/bets", json=body, headers=headers, timeout=5).status_code


def test_a_client_signed_in_stays_signed_in_across_the_handover_but_not_a_restart(stack):
    """The api's new instance signs with the key of the one it replaces, so the fault
    going in or out signs nobody out (a 401 there would be the fault's doing, not the
    incident's); a real restart still does, as the drills about restarts expect."""
    token = sign_in(stack)
    assert bet(stack, token) == 201
    stack.insert_http_proxy("api", RULES, proxy_script())
    assert bet(stack, token) == 201
    stack.remove_http_proxy("api")
    assert bet(stack, token) == 201
    stack.restart("api")
    assert bet(stack, token) == 401
    assert bet(stack, sign_in(stack)) == 201
    assert_stack_clean(stack)


def _under_lock(target: LocalTarget, step) -> None:
    with target._locked():
        step(target._read_state())


def half_way_in(target: LocalTarget, taken_over: bool) -> dict:
    """The api's entry as a crash on the way in leaves it: the new instance up on a
    spare port and the proxy listening beside the api; with `taken_over`, the new
    instance already recorded as the api and the old one as leaving."""
    spare = _free_port(set())

    def steps(state: dict) -> None:
        state["services"]["api"]["proxy"] = {"rules": RULES, "script": str(proxy_script()),
                                             "pid": None, "start_ticks": None}  # fmt: skip
        target._start_incoming(state, "api", spare, time.monotonic())
        target._spawn_proxy(state, "api", spare)
        if taken_over:
            target._take_over(state, "api", listen_port=spare)

    _under_lock(target, steps)
    return api_entry(target)


def test_a_handover_stopped_before_the_new_instance_took_over_is_put_back(stack):
    """As after a crash once the new instance is up and the proxy beside the api: the
    removal stops the proxy, then the new instance, and leaves the api that never
    stopped serving as it was."""
    serving = api_entry(stack)
    left = half_way_in(stack, taken_over=False)
    assert pid_alive(left["incoming"]["pid"]) and listeners(serving["port"]) == 2
    with clients(stack, ("/api/markets/1", "/healthz")) as answers:
        done = stack.remove_http_proxy("api")
        time.sleep(0.5)
    assert done == {"service": "api", "removed": True, "restarted": False}
    assert not pid_alive(left["incoming"]["pid"]) and not pid_alive(left["proxy"]["pid"])
    after = api_entry(stack)
    assert after["pid"] == serving["pid"] and not {"proxy", "incoming"} & set(after)
    assert len(answers.failures) <= 2, answers.failures  # the kernel's close race
    assert listeners(serving["port"]) == 1
    assert_stack_clean(stack)


def test_a_handover_stopped_before_the_leaving_instance_stopped_keeps_it(stack):
    """As after a crash on the way in, once the new instance had taken over and before
    the old one stopped: the old one still listens on the api's port, so the removal
    keeps it (no restart, no refused connection) and stops the proxy and the new one."""
    home = api_entry(stack)
    left = half_way_in(stack, taken_over=True)
    assert left["retiring"]["pid"] == home["pid"] and left["listen_port"] != home["port"]
    with clients(stack, ("/api/markets/1", "/healthz")) as answers:
        done = stack.remove_http_proxy("api")
        time.sleep(0.5)
    assert done == {"service": "api", "removed": True, "restarted": False}
    after = api_entry(stack)
    assert after["pid"] == home["pid"]  # the instance that was there all along
    assert not pid_alive(left["pid"]) and not pid_alive(left["proxy"]["pid"])
    assert not {"proxy", "listen_port", "retiring", "incoming"} & set(after)
    assert len(answers.failures) <= 2, answers.failures  # the kernel's close race
    assert listeners(home["port"]) == 1
    assert_stack_clean(stack)


def test_an_instance_a_crash_left_unrecorded_is_found_by_its_launch_token(stack):
    """Killed after starting the new instance and before writing its pid: the record
    holds only its launch token, and the removal finds the process by it."""
    spare = _free_port(set())
    found: list[int] = []

    def half_way(state: dict) -> None:
        entry = state["services"]["api"]
        entry["incoming"] = {"port": spare, "pid": None, "start_ticks": None,
                             "launch": "feedc0de"}  # fmt: skip
        stack._write_state(state)
        proc, _ = stack._launch(state, "api", spare, "feedc0de")  # its pid never written
        found.append(proc.pid)

    _under_lock(stack, half_way)
    wait_for(lambda: listeners(spare) == 1, 15, "the unrecorded instance listening")
    assert [pid for pid, _ in pids_launched("feedc0de")] == found
    stack.remove_http_proxy("api")
    assert not pid_alive(found[0]) and listeners(spare) == 0
    assert pids_launched("feedc0de") == []
    assert_stack_clean(stack)


def test_a_handover_out_that_fails_falls_back_to_the_plain_way(stack, monkeypatch):
    """The new instance on the api's port dies at start: the proxy comes out all the
    same (the plain way: the api restarted at home), not left in for the next try."""
    put = stack.insert_http_proxy("api", RULES, proxy_script())
    original = stack._launch

    def dying(state, service, port=None, launch=""):
        if port is None:
            return original(state, service, launch=launch)
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]), True

    monkeypatch.setattr(stack, "_launch", dying)
    done = stack.remove_http_proxy("api")
    assert done == {"service": "api", "removed": True, "restarted": True}
    assert not pid_alive(put["proxy_pid"])
    base = stack.service_endpoints("api")["http"]
    assert httpx.get(f"{base}/api/promotions", timeout=5).status_code == 200
    assert not {"proxy", "listen_port", "retiring", "incoming"} & set(api_entry(stack))
    assert_stack_clean(stack)


def test_an_instance_already_told_to_stop_is_not_the_one_kept(stack):
    """Killed while the old instance was stopping (it has closed its port and may live
    on a second or two): the removal must not keep it, but bring the api home afresh."""
    left = half_way_in(stack, taken_over=True)
    os.kill(left["retiring"]["pid"], signal.SIGTERM)
    done = stack.remove_http_proxy("api")
    assert done == {"service": "api", "removed": True, "restarted": True}
    after = api_entry(stack)
    assert after["pid"] not in (left["pid"], left["retiring"]["pid"])
    assert not {"proxy", "listen_port", "retiring", "incoming", "restart"} & set(after)
    assert listeners(after["port"]) == 1
    assert_stack_clean(stack)


def test_with_a_dependency_down_the_proxy_comes_out_and_the_restart_is_owed(stack):
    """Nothing is stopped that cannot be started again: with Redis down the proxy comes
    out, the moved api keeps running, and the restart home is done once Redis is back."""
    put = stack.insert_http_proxy("api", RULES, proxy_script())
    moved = api_entry(stack)
    stack.stop("redis-cache")
    try:
        with pytest.raises(StackError, match="needs redis-cache"):
            stack.remove_http_proxy("api")
        assert not pid_alive(put["proxy_pid"])
        assert pid_alive(moved["pid"]) and api_entry(stack)["listen_port"] == moved["listen_port"]
    finally:
        stack.start("redis-cache")
    done = stack.remove_http_proxy("api")
    assert done == {"service": "api", "removed": True, "restarted": True}
    assert not pid_alive(moved["pid"]) and listeners(api_entry(stack)["port"]) == 1
    assert_stack_clean(stack)


def test_a_service_or_proxy_started_without_reuse_port_is_moved_the_plain_way(stack):
    """A stack brought up by an earlier pagerdrill has no SO_REUSEPORT on its sockets:
    the proxy goes in by stopping and moving the api, as it always did, and a proxy an
    earlier pagerdrill started comes out the same way."""

    def earlier(state: dict) -> None:
        state["services"]["api"]["reuse_port"] = False
        stack._write_state(state)

    _under_lock(stack, earlier)
    put = stack.insert_http_proxy("api", RULES, proxy_script())
    assert not put["handover"]
    base = stack.service_endpoints("api")["http"]
    assert httpx.get(f"{base}/api/promotions", timeout=5).status_code == 500
    assert api_entry(stack)["reuse_port"]  # the moved api was started by this pagerdrill

    def earlier_proxy(state: dict) -> None:
        state["services"]["api"]["proxy"]["reuse_port"] = False
        stack._write_state(state)

    _under_lock(stack, earlier_proxy)
    taken = stack.remove_http_proxy("api")
    assert taken == {"service": "api", "removed": True, "restarted": True}
    assert httpx.get(f"{base}/api/promotions", timeout=5).status_code == 200
    assert_stack_clean(stack)


def test_after_a_plain_insert_the_port_is_handed_back_with_no_gap(stack):
    """The plain way in restarts the api with SO_REUSEPORT, and the proxy always has
    it: the way out is a handover."""

    def earlier(state: dict) -> None:
        state["services"]["api"]["reuse_port"] = False
        stack._write_state(state)

    _under_lock(stack, earlier)
    assert not stack.insert_http_proxy("api", RULES, proxy_script())["handover"]
    assert stack.remove_http_proxy("api")["handover"]
    assert_stack_clean(stack)


class Killed(BaseException):
    """Stands for a kill -9 of the tool: nothing after it runs, no handler catches it."""


def test_a_plain_insert_killed_with_the_api_stopped_owes_its_restart(stack, monkeypatch):
    """The plain way in stops the api before it starts it on the spare port: killed
    there, the removal must start it again at home, not leave it stopped."""

    def earlier(state: dict) -> None:
        state["services"]["api"]["reuse_port"] = False
        stack._write_state(state)

    _under_lock(stack, earlier)

    def killed(*_args, **_kwargs):
        raise Killed

    monkeypatch.setattr(stack, "_wait_healthy", killed)
    with pytest.raises(Killed):
        stack.insert_http_proxy("api", RULES, proxy_script())
    monkeypatch.undo()
    left = api_entry(stack)
    assert left["restart"] and left["pid"] is None and left["listen_port"]
    done = stack.remove_http_proxy("api")
    assert done == {"service": "api", "removed": True, "restarted": True}
    assert not {"proxy", "listen_port", "restart"} & set(api_entry(stack))
    assert listeners(api_entry(stack)["port"]) == 1
    assert_stack_clean(stack)


def test_stack_down_stops_a_service_started_but_never_recorded(tmp_path):
    """Killed between starting a service and writing its pid: the entry holds only the
    launch token, and `stack down` still finds and stops the process."""
    target = LocalTarget(load_workspace(write_workspace(tmp_path / "ws")))
    target.up()
    try:
        target.stop("api")
        home = api_entry(target)["port"]
        started: list[int] = []

        def crashed_start(state: dict) -> None:
            entry = state["services"]["api"]
            entry.update(pid=None, start_ticks=None, launch="0ddba11")
            target._write_state(state)
            proc, _ = target._launch(state, "api", launch="0ddba11")  # pid never written
            started.append(proc.pid)

        _under_lock(target, crashed_start)
        wait_for(lambda: listeners(home) == 1, 15, "the unrecorded api listening")
    finally:
        target.down()
    assert not pid_alive(started[0]) and listeners(home) == 0
