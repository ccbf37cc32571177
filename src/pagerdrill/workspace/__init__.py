"""A workspace is a folder a team keeps in git: `pagerdrill.yaml` plus scenarios,
runbooks, readiness records, archived drills and the compose stack."""

from __future__ import annotations

import getpass
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pagerdrill.errors import BadInputError, ConfigError, WorkspaceNotFound, did_you_mean
from pagerdrill.refstack.spec import NUMBER_SETTINGS, RESERVED_ENV, ROLE_NAMES, SERVICE_NAMES
from pagerdrill.workspace.config import WorkspaceConfig
from pagerdrill.workspace.traffic import host_refusal
from pagerdrill.workspace.yamlfile import LineMap, load_yaml, validate

CONFIG_NAME = "pagerdrill.yaml"
STATE_DIR_NAME = ".pagerdrill"
WORKSPACE_DIRS = ("compose", "scenarios", "runbooks", "readiness", "drills")
ROLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""A role's name, as scenarios write it (`role: consumer`)."""


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: WorkspaceConfig
    lines: LineMap = field(default_factory=LineMap, compare=False, repr=False)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def state_dir(self) -> Path:
        """Runtime state of the local stack (pids, ports, logs); ignored by git."""
        return self.root / STATE_DIR_NAME

    def config_error(self, loc: tuple, message: str) -> ConfigError:
        return ConfigError(self.config_path, [(self.lines.line_of(loc), message)])


def find_workspace(explicit: Path | str | None = None, start: Path | None = None) -> Path:
    """The workspace root: `explicit`, else $PAGERDRILL_WORKSPACE, else the nearest
    folder at or above `start` (the current directory) holding `pagerdrill.yaml`."""
    chosen = explicit or os.environ.get("PAGERDRILL_WORKSPACE")
    if chosen:
        root = Path(chosen).expanduser().resolve()
        if not (root / CONFIG_NAME).is_file():
            raise WorkspaceNotFound(f"{root}: no {CONFIG_NAME} here (is this a workspace?)")
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceNotFound(
        f"no {CONFIG_NAME} in {here} or any folder above it; "
        "run `pagerdrill init DIR` to make a workspace, or pass --workspace DIR"
    )


def load_workspace(root: Path) -> Workspace:
    path = root / CONFIG_NAME
    data, lines = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, [(1, "expected a mapping of keys (version, target, local ...)")])
    problems = _consistency_problems(data, lines)
    try:
        config = validate(WorkspaceConfig, data, path, lines)
    except ConfigError as err:
        problems = err.problems + problems
    if problems:  # every problem at once, in file order
        raise ConfigError(path, sorted(problems, key=lambda p: (p[0] is None, p[0] or 0)))
    return Workspace(root=root, config=config, lines=lines)


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


Problem = tuple[int | None, str]


def _consistency_problems(data: dict, lines: LineMap) -> list[Problem]:
    """Cross-key checks the schema cannot express. They read the raw document (type
    errors are the schema's to report) so they run even when the schema fails."""
    problems = _local_service_problems(data, lines) + _role_name_problems(data, lines)
    redis_server = _mapping(data.get("local")).get("redis_server")
    if isinstance(redis_server, str) and redis_server:
        wrong = _not_a_redis_server(redis_server)
        if wrong:
            problems.append(
                (lines.line_of(("local", "redis_server")), f"local.redis_server: {wrong}")
            )
    target = data.get("target", "local")
    if target == "local":
        for role, binding in _mapping(data.get("roles")).items():
            service = _mapping(binding).get("service")
            if isinstance(service, str) and service and service not in SERVICE_NAMES:
                problems.append(
                    _unknown_service(
                        lines, ("roles", role, "service"), service, f"roles.{role}.service"
                    )
                )
        for name in _mapping(data.get("logs")):
            if isinstance(name, str) and name not in SERVICE_NAMES:
                problems.append(_unknown_service(lines, ("logs", name), name, f"logs.{name}"))
    if target == "compose" and data.get("compose") is None:
        problems.append(
            (lines.line_of(("target",)), "target is 'compose' but there is no compose: section")
        )
    return problems + _traffic_problems(data, lines) + _port_problems(data, lines)


def _unknown_service(lines: LineMap, loc: tuple, name: str, what: str) -> Problem:
    hint = did_you_mean(name, SERVICE_NAMES)
    message = f"{what}: unknown service '{name}'; the reference stack has " + ", ".join(
        SERVICE_NAMES
    )
    if hint is not None:
        message += f" (did you mean '{hint}'?)"
    return lines.line_of(loc), message


def _local_service_problems(data: dict, lines: LineMap) -> list[Problem]:
    """`local.services`: names of the reference stack's services, and env settings
    pagerdrill keeps for itself or reads as numbers."""
    problems: list[Problem] = []
    services = _mapping(_mapping(data.get("local")).get("services"))
    for name in services:
        if isinstance(name, str) and name not in SERVICE_NAMES:
            problems.append(
                _unknown_service(lines, ("local", "services", name), name, f"local.services.{name}")
            )
    for name, svc in services.items():
        env = _mapping(_mapping(svc).get("env"))
        for key, value in env.items():
            loc = ("local", "services", name, "env", key)
            where = f"local.services.{name}.env.{key}"
            if key in RESERVED_ENV:
                problems.append(
                    (lines.line_of(loc), f"{where}: pagerdrill sets {key} itself to find the "
                     "service; it cannot be set here")
                )  # fmt: skip
            setting = NUMBER_SETTINGS.get(str(name), {}).get(str(key))
            if setting is not None:
                wrong = _number_problem(value, setting)
                if wrong:
                    problems.append((lines.line_of(loc), f"{where}: {wrong}"))
    return problems


def _role_name_problems(data: dict, lines: LineMap) -> list[Problem]:
    """A team may bind roles of its own (a consumer, its Prometheus ...); a name a
    letter or two off a shipped scenario's role is a typo, which would leave that role
    unbound without a word."""
    problems: list[Problem] = []
    for role in _mapping(data.get("roles")):
        hint = None if role in ROLE_NAMES else did_you_mean(str(role), ROLE_NAMES, 0.75)
        if not (isinstance(role, str) and ROLE_NAME.fullmatch(role)):
            problems.append(
                (lines.line_of(("roles", role)), f"roles.{role}: a role name is lower-case "
                 "letters, digits and _ (starting with a letter)")
            )  # fmt: skip
        elif hint is not None:
            message = f"roles.{role}: unknown role; the scenarios' roles are " + ", ".join(
                ROLE_NAMES
            )
            problems.append((lines.line_of(("roles", role)), f"{message} (did you mean '{hint}'?)"))
    return problems


def _port_problems(data: dict, lines: LineMap) -> list[Problem]:
    """Two local services given the same port."""
    problems: list[Problem] = []
    ports: dict[int, str] = {}
    for name, svc in _mapping(_mapping(data.get("local")).get("services")).items():
        port = _mapping(svc).get("port")
        if not isinstance(port, int) or isinstance(port, bool):
            continue
        if port in ports:
            problems.append(
                (
                    lines.line_of(("local", "services", name, "port")),
                    f"local.services.{name}.port: port {port} is also given to {ports[port]}",
                )
            )
        ports[port] = name
    return problems


def bound_hosts(roles: dict) -> set[str]:
    """The hosts the role bindings' URLs name (url, health_url, redis_url)."""
    import urllib.parse

    hosts: set[str] = set()
    for binding in roles.values():
        for key in ("url", "health_url", "redis_url"):
            value = _mapping(binding).get(key)
            if isinstance(value, str):
                host = urllib.parse.urlsplit(value).hostname
                if host:
                    hosts.add(host.lower())
    return hosts


def _traffic_problems(data: dict, lines: LineMap) -> list[tuple[int | None, str]]:
    """The traffic profile goes only to the stack under drill: its base is a bound role,
    or a URL on loopback or on a host the bindings name."""
    traffic = _mapping(data.get("traffic"))
    roles = _mapping(data.get("roles"))
    problems: list[tuple[int | None, str]] = []
    url = traffic.get("url")
    if isinstance(url, str):
        refusal = host_refusal(url, bound_hosts(roles))
        if refusal:
            problems.append((lines.line_of(("traffic", "url")), f"traffic.url: {refusal}"))
    role = traffic.get("role")
    local = data.get("target", "local") == "local"
    if isinstance(role, str) and role not in roles and not (local and role in ROLE_NAMES):
        bound = ", ".join(sorted(map(str, roles))) or "none"
        problems.append(
            (
                lines.line_of(("traffic", "role")),
                f"traffic.role: role '{role}' is not bound in roles: (bound roles: {bound})",
            )
        )
    if isinstance(role, str) and _mapping(roles.get(role)).get("generator"):
        problems.append(
            (
                lines.line_of(("traffic", "role")),
                f"traffic.role: role '{role}' is the traffic generator itself; expected the "
                "role of the service the traffic goes to",
            )
        )
    return problems


def _number_problem(value: object, setting) -> str | None:
    """What is wrong with a numeric service setting, or None."""
    kind = "a whole number" if setting.integer else "a number"
    limits = f" >= {setting.minimum:g}"
    if setting.maximum is not None:
        limits += f" and <= {setting.maximum:g}"
    expected = f"expected {kind}{limits}"
    if isinstance(value, bool):
        return f"{value!r}: {expected}"
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        number = None
    if number is None or not math.isfinite(number):
        return f"{value!r}: {expected}"
    if setting.integer and not number.is_integer():
        return f"{value!r}: {expected}"
    if number < setting.minimum or (setting.maximum is not None and number > setting.maximum):
        return f"{value!r}: {expected}"
    return None


def _not_a_redis_server(configured: str) -> str | None:
    """Why `configured` is not a Redis server binary, or None. It must run and say so:
    a wrong binary would otherwise only show when `stack up` waits for it in vain."""
    candidate = Path(configured).expanduser()
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        return f"{candidate} is not an executable file; expected the path of redis-server"
    try:
        done = subprocess.run(
            [str(candidate), "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{candidate} --version did not answer ({exc}); expected a redis-server"
    if "redis server" not in done.stdout.lower():
        first = (done.stdout or done.stderr).strip().splitlines()[:1]
        said = (
            f"it said {first[0][:80]!r}"
            if first
            else f"it said nothing (exit code {done.returncode})"
        )
        return f"{candidate} is not a redis-server: asked for --version, {said}"
    return None


def open_workspace(explicit: Path | str | None = None) -> Workspace:
    return load_workspace(find_workspace(explicit))


def _template_root() -> Path:
    """The workspace files shipped with the package (a wheel), else the source checkout's."""
    packaged = resources.files("pagerdrill") / "_workspace"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / CONFIG_NAME).is_file() and (checkout / "compose").is_dir():
        return checkout
    raise BadInputError("the workspace template is missing from this installation of pagerdrill")


TEMPLATE_FILES = (
    CONFIG_NAME,
    "compose",
    "runbooks",
    "readiness/README.md",
    "readiness/roster.yaml",
    "readiness/gate.yaml",
    "readiness/security-register.md",
    "docs/api-changelog.md",
    "escalation-matrix.yaml",
    "escalation",
    "scenarios",
    "checklist.yaml",
    "drills/README.md",
)


# compose/wheels/ is a local build input (gitignored), never template
_NOT_TEMPLATE = ("__pycache__", "wheels")


def _template_files(src: Path, skip: tuple[Path, ...]) -> list[Path]:
    """The template's files (relative to `src`), none of them under a `skip` folder."""
    out: list[Path] = []
    for rel in TEMPLATE_FILES:
        source = src / rel
        if not source.is_dir():
            out.append(Path(rel))
            continue
        for folder, dirs, names in os.walk(source):
            here = Path(folder)
            dirs[:] = sorted(
                d for d in dirs if d not in _NOT_TEMPLATE and (here / d).resolve() not in skip
            )
            out += [(here / n).relative_to(src) for n in sorted(names) if not n.endswith(".pyc")]
    return out


def _committed_files(src: Path, files: list[Path]) -> dict[Path, bytes] | None:
    """The template files as the source checkout's last commit has them, when the
    template is a git checkout (an editable install): a new team's workspace gets the
    template, not whatever was edited or added in the checkout since (a runbook being
    written, a roster with someone's keys, validation logs). None when `src` is no git
    checkout, or git cannot say."""
    import io
    import subprocess
    import tarfile

    try:
        top = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != src.resolve():
            return None
        archive = subprocess.run(
            ["git", "-C", str(src), "archive", "--format=tar", "HEAD", "--", *TEMPLATE_FILES],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if archive.returncode != 0:
        return None
    wanted = {str(rel) for rel in files}
    out: dict[Path, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None and member.name in wanted:
                out[Path(member.name)] = handle.read()
    return out


def init_workspace(dest: Path) -> list[Path]:
    """Scaffold a workspace at `dest`. Refuses to overwrite an existing one; writes into a
    sibling temporary folder first so a failure leaves nothing half-made."""
    dest = dest.expanduser().resolve()
    if (dest / CONFIG_NAME).exists():
        raise BadInputError(f"{dest / CONFIG_NAME} already exists; not overwriting a workspace")
    clashes = [name for name in WORKSPACE_DIRS if (dest / name).exists()]
    if clashes:
        raise BadInputError(
            f"{dest}: already has {', '.join(clashes)}; init only scaffolds a fresh workspace"
        )
    src = _template_root()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.pagerdrill-init-{os.getpid()}"
    # The new workspace may lie inside the template (`init scenarios/x` in a source
    # checkout, whose top level is the template): the files to copy are listed before
    # anything is written, without the destination, so the copy never copies itself.
    files = _template_files(src, skip=(dest, staging))
    committed = _committed_files(src, files)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        for rel in files if committed is None else sorted(committed):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if committed is None:
                shutil.copy2(src / rel, target)
            else:
                target.write_bytes(committed[rel])
        ignore = src / "workspace.gitignore"
        ignore = ignore if ignore.is_file() else src / ".gitignore"
        existing = dest / ".gitignore"
        if existing.is_file():  # the team's own: keep it, and add what pagerdrill needs
            lines = existing.read_text().splitlines()
            needed = [
                line
                for line in ignore.read_text().splitlines()
                if line and not line.startswith("#") and line not in lines
            ]
            merged = "\n".join([*lines, *needed]) + "\n"
            (staging / ".gitignore").write_text(merged)
        else:
            shutil.copy2(ignore, staging / ".gitignore")
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for entry in sorted(staging.iterdir()):
            os.replace(entry, dest / entry.name)
            written.append(dest / entry.name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def default_engineer() -> str:
    """Who is drilling when nobody says: `git config user.name`, else the login name
    (the TUI and `run` alike)."""
    try:
        out = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=5, check=False
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser()
    except Exception:
        return "anon"
