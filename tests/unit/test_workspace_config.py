"""pagerdrill.yaml: strict models, line-numbered errors, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pagerdrill.errors import ConfigError
from pagerdrill.journal.redact import redact_url
from pagerdrill.workspace import load_workspace
from pagerdrill.workspace.config import WorkspaceConfig

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pagerdrill.yaml").write_text(text)
    return tmp_path


def test_the_repo_is_itself_a_valid_workspace():
    ws = load_workspace(REPO)
    assert ws.config.target == "local"
    assert ws.config.roles["queue"].queue == "bet_settled_queue"
    # YAML numbers in env maps become the strings an environment holds
    assert ws.config.local.services["game"].env["GAME_RATE"] == "5"


def test_an_empty_file_means_all_defaults(tmp_path):
    assert load_workspace(write(tmp_path, "")).config == WorkspaceConfig()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 2\n", ":1: version: Input should be 1"),
        ("- a\n- b\n", ":1: expected a mapping of keys"),
        (
            "local:\n  services:\n    apii: {}\n",
            ":3: local.services.apii: unknown service 'apii'; the reference stack has redis-cache, "
            "api, rt, game, traffic (did you mean 'api'?)",
        ),
        (
            "roles:\n  cache:\n    service: redis\n",
            ":3: roles.cache.service: unknown service 'redis'",
        ),
        ("roles:\n  cache:\n    queue: q\n", ":2: roles.cache.service: required key is missing"),
        (
            "local:\n  services:\n    api: {port: 70000}\n",
            ":3: local.services.api.port: Input should be less than or equal to 65535",
        ),
        (
            "local:\n  services:\n    api: {port: 9000}\n    rt: {port: 9000}\n",
            ":4: local.services.rt.port: port 9000 is also given to api",
        ),
        ("target: compose\n", ":1: target is 'compose' but there is no compose: section"),
        ("version: 1\nversion: 1\n", ":2: version: duplicate key (first at line 1)"),
        (
            "local: {services: {api: {env: {A: [1]}}}}\n",
            ":1: local.services.api.env.A: Input should be a valid string",
        ),
        ("a: *nope\n", ":1: not valid YAML"),
    ],
)
def test_bad_workspace_files_name_file_line_and_what_was_expected(tmp_path, text, expected):
    with pytest.raises(ConfigError) as caught:
        load_workspace(write(tmp_path, text))
    assert f"{tmp_path / 'pagerdrill.yaml'}{expected}" in str(caught.value)
    assert caught.value.exit_code == 2


def test_unsafe_yaml_tags_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_workspace(write(tmp_path, "version: !!python/object/apply:os.system ['true']\n"))


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_junk_text_gives_a_config_error_or_a_config_never_a_traceback(tmp_path, text):
    try:
        load_workspace(write(tmp_path, text))
    except ConfigError as err:
        assert str(err).startswith(str(tmp_path / "pagerdrill.yaml"))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.dictionaries(
        st.sampled_from(["version", "target", "local", "roles", "compose", "other"]),
        yaml_values,
        max_size=4,
    )
)
def test_junk_structures_give_a_config_error_or_a_config_never_a_traceback(tmp_path, doc):
    try:
        load_workspace(write(tmp_path, yaml.safe_dump(doc)))
    except ConfigError as err:
        assert err.problems and all(message for _, message in err.problems)


def test_redis_urls_lose_their_password_when_printed():
    assert redact_url("redis://:cache@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact_url("see rediss://user:s3cr3t@h:1 and http://h/x") == (
        "see rediss://user:***@h:1 and http://h/x"
    )


def test_schema_and_consistency_problems_are_reported_together_in_file_order(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_workspace(
            write(tmp_path, "local:\n  services:\n    apu: {}\n  redis_pasword: x\nversion: 3\n")
        )
    assert [line for line, _ in caught.value.problems] == [3, 4, 5]
    assert "unknown service 'apu'" in caught.value.problems[0][1]


def test_a_team_binds_roles_of_its_own_but_a_misspelt_shipped_role_is_refused(tmp_path):
    text = "roles:\n  consumer:\n    service: api\n  prometheus:\n    service: traffic\n"
    ws = load_workspace(write(tmp_path, text))
    assert ws.config.roles["consumer"].service == "api"
    with pytest.raises(ConfigError, match=r":2: roles.cahce: unknown role.*did you mean 'cache'"):
        load_workspace(write(tmp_path, "roles:\n  cahce:\n    service: redis-cache\n"))
    with pytest.raises(ConfigError, match=r":2: roles.Web-1: a role name is lower-case"):
        load_workspace(write(tmp_path, "roles:\n  Web-1:\n    service: api\n"))
