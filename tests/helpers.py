"""Helpers for tests: temporary workspaces, real HTTP requests, Prometheus scrapes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pagerdrill.journal import JournalRead
from pagerdrill.journal.summary import Summary, summary_of
from pagerdrill.targets.local import LocalTarget

REPO = Path(__file__).resolve().parents[1]

# Fast, drill-friendly settings for tests: a quick producer, a low handshake limit.
TEST_ENV = {
    "api": {"ADMIN_DEFAULT_PASSWORD": "right-horse-battery", "SLOW_PATH_MS": 150},
    "rt": {"HANDSHAKE_LIMIT": 10, "HANDSHAKE_WINDOW_S": 5},
    "game": {"GAME_RATE": 20},
    "traffic": {"TRAFFIC_RATE": 5, "TRAFFIC_SOCKETS": 2},
}


PAGERDRILL = [sys.executable, "-m", "pagerdrill"]


def summary_from(fields: Mapping[str, Any]) -> Summary:
    """A drill's typed summary with `fields` (its JSON keys; `hypothesis` a dict of its
    own keys) over those of a journal with no events: a summary edited by hand, to show
    one thing."""
    base = msgspec.to_builtins(summary_of(JournalRead(Path("drill.jsonl"))))
    merged = base | dict(fields)
    merged["hypothesis"] = base["hypothesis"] | dict(fields.get("hypothesis") or {})
    return msgspec.convert(merged, Summary)


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the real command runs in: this one without a workspace of the
    developer's own (each test names its workspace), with `extra` on top. UNBUFFERED
    is for a test that reads a child's lines as it prints them; it is not the default,
    as the stack's services a command starts inherit it."""
    env = {k: v for k, v in os.environ.items() if k != "PAGERDRILL_WORKSPACE"}
    return env | dict(extra or {})


UNBUFFERED = {"PYTHONUNBUFFERED": "1"}


def pagerdrill_cli(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
    check: bool = False,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """The real `pagerdrill` command run to its end in a fresh process, its output
    captured as text; `env` is added to `cli_env()`. A command still running after
    `timeout` is interrupted as Ctrl-C would (a drill reverts its faults on it) before
    the test fails, so that it does not leave them in for the tests after it."""
    with subprocess.Popen(
        [*PAGERDRILL, *args],
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=cli_env(env),
        preexec_fn=preexec_fn,
    ) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            raise AssertionError(
                f"pagerdrill {' '.join(args)} still running after {timeout:g} s; "
                f"interrupted.\n{err}{out}"
            ) from None
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def start_pagerdrill(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stderr: int | None = subprocess.PIPE,
) -> subprocess.Popen:
    """The real `pagerdrill` command started in a fresh process, stdout (and by default
    stderr) piped as text, for a test that reads it while it runs; `env` is added to
    `cli_env()`."""
    return subprocess.Popen(
        [*PAGERDRILL, *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=cwd,
        env=cli_env(env),
    )


def write_workspace(root: Path, config: dict | None = None) -> Path:
    """A workspace folder holding `config` (default: the test settings above)."""
    root.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = {
            "version": 1,
            "target": "local",
            "local": {"services": {name: {"env": env} for name, env in TEST_ENV.items()}},
        }
    (root / "pagerdrill.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def http_json(url: str, body: dict | None = None, headers: dict | None = None):
    """(status, parsed JSON body) of a real HTTP request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus /metrics page: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


_MISSING = object()


def metric(url: str, name: str, default: float | object = _MISSING, **labels: str) -> float:
    """One sample's value. A series that is not there fails the test (a renamed metric
    must not read as zero) unless a `default` is given: a labelled counter appears only
    once something has counted."""
    samples = scrape(url)
    key = (name, tuple(sorted(labels.items())))
    if key in samples:
        return samples[key]
    if default is _MISSING:
        raise AssertionError(f"{url} has no sample {name}{labels or ''}")
    return default  # type: ignore[return-value]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def endpoint(target: LocalTarget, service: str, kind: str = "http") -> str:
    return next(s for s in target.status() if s.name == service).endpoints[kind]
