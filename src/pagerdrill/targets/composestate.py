"""The compose target's own files: the recorded compose variables, the lock, the
override file of environment overrides, and how the compose CLI is run with them."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pagerdrill.errors import StackError
from pagerdrill.targets.composeattrs import (
    FAULT_TOKEN_VAR,
    LOCK_WAIT_S,
    LOG_TAIL,
    OVERRIDES_LABEL,
    STATE_VERSION,
    compose_cli,
    compose_variables,
)
from pagerdrill.targets.state import (
    ABSENT,
    bad_state_error,
    ensure_private_dir,
    read_state,
    stack_lock,
    write_private,
)

if TYPE_CHECKING:
    from pagerdrill.workspace import Workspace


class ComposeFiles:
    """Mixed into ComposeTarget."""

    workspace: Workspace
    project: str
    environ: dict[str, str]
    files: list[Path]
    env_file: Path | None
    state_dir: Path
    state_path: Path
    override_path: Path

    if TYPE_CHECKING:  # what ComposeTarget provides

        def _read_files(self) -> list[str]: ...

    # -------------------------------------------------------- state and lock

    def _ensure_state_dir(self) -> None:
        ensure_private_dir(self.state_dir)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        busy = f"another pagerdrill command is changing compose project {self.project}"
        return stack_lock(self.state_dir, f"compose-{self.project}.lock", LOCK_WAIT_S, busy)

    def _write_atomic(self, path: Path, text: str) -> None:
        write_private(path, text, path.with_name(f".{path.name}.{os.getpid()}.tmp"))

    def _read_state(self) -> dict[str, Any] | None:
        state = read_state(self.state_path, self._bad_state)
        if state is ABSENT:
            return None
        interpolation = state.get("interpolation") if isinstance(state, dict) else None
        if not isinstance(interpolation, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str))
            for k, v in interpolation.items()
        ):
            raise self._bad_state("expected an object with an 'interpolation' object")
        return state

    def _bad_state(self, why: str) -> StackError:
        return bad_state_error(
            "compose",
            self.state_path,
            why,
            "remove it, and pagerdrill records the compose variables again from this shell",
        )

    def _record(self, fresh: bool) -> dict[str, Any]:
        """The compose variables' values this project runs with: recorded from this
        process's environment when the project is (re)created, read back otherwise."""
        state = None if fresh else self._read_state()
        if state is not None:
            return state
        names = compose_variables(self._read_files())
        interpolation = {name: self.environ.get(name) for name in names}
        if fresh and FAULT_TOKEN_VAR in interpolation and not interpolation[FAULT_TOKEN_VAR]:
            # the api's fault-injection route answers only to holders of this token
            interpolation[FAULT_TOKEN_VAR] = secrets.token_hex(16)
        state = {
            "version": STATE_VERSION,
            "project": self.project,
            "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "interpolation": interpolation,
        }
        self._write_atomic(self.state_path, json.dumps(state, indent=2, sort_keys=True) + "\n")
        return state

    # ------------------------------------------------------------ compose CLI

    def _compose_env(self, state: dict[str, Any]) -> dict[str, str]:
        env = dict(self.environ)
        for name, value in state["interpolation"].items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _compose_argv(self, args: Sequence[str]) -> list[str]:
        argv = [*compose_cli(), "-p", self.project]
        for path in self.files:
            argv += ["-f", str(path)]
        if self.override_path.exists():
            argv += ["-f", str(self.override_path)]
        if self.env_file is not None:
            argv += ["--env-file", str(self.env_file)]
        return argv + list(args)

    def _compose(self, state: dict[str, Any], args: Sequence[str], timeout: float) -> str:
        argv = self._compose_argv(args)
        shown = " ".join([*compose_cli(), "-p", self.project, *args])
        try:
            done = subprocess.run(
                argv,
                env=self._compose_env(state),
                cwd=self.workspace.root,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StackError("compose", f"`{shown}` did not finish in {timeout:g} s") from None
        except OSError as exc:
            raise StackError("compose", f"cannot run `{shown}`: {exc.strerror}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-LOG_TAIL:]
            raise StackError("compose", f"`{shown}` failed with exit code {done.returncode}", tail)
        return done.stdout

    def _write_overrides(self, wanted: Mapping[str, Mapping[str, str]]) -> None:
        """The override file: each service's overridden variables, and a label naming
        them. No file when nothing is overridden."""
        services = {s: dict(env) for s, env in wanted.items() if env}
        if not services:
            self.override_path.unlink(missing_ok=True)
            return
        import yaml

        from pagerdrill.workspace.yamlfile import load_yaml

        doc: dict[str, Any] = {}
        base, _ = load_yaml(self.files[0])
        if isinstance(base, dict) and "version" in base:
            doc["version"] = str(base["version"])  # docker-compose 1.x wants them equal
        doc["services"] = {
            service: {
                # compose interpolates override files too: a literal $ is written $$
                "environment": {k: v.replace("$", "$$") for k, v in sorted(env.items())},
                "labels": {OVERRIDES_LABEL: ",".join(sorted(env))},
            }
            for service, env in sorted(services.items())
        }
        header = (
            "# Written by pagerdrill: environment overrides of a drill in progress.\n"
            "# `pagerdrill recover` (or `pagerdrill stack restart SERVICE --reset-env`) puts\n"
            "# each service back to its own environment and removes this file.\n"
        )
        self._write_atomic(self.override_path, header + yaml.safe_dump(doc, sort_keys=False))
