from __future__ import annotations

from pathlib import Path

import pytest

from infra.safety import (
    EnvironmentRefused,
    ProductionWriteRefused,
    prod_write_allowed,
    require_prod_write,
    require_research_env,
)
from infra.settings import PROJECT_ROOT, SettingsError, load_settings


def test_defaults() -> None:
    s = load_settings({})
    assert s.env == "dev"
    assert s.allow_prod_write is False
    assert s.eventbus_url == "memory://"
    assert s.cache_dir == PROJECT_ROOT / "logs" / "cache"
    assert s.firestore_enabled is False


def test_paths_follow_logs_dir(tmp_path: Path) -> None:
    s = load_settings({"LOGS_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path / "data"
    assert s.cache_dir == tmp_path / "cache"
    assert s.research_dir == tmp_path / "research"
    s2 = load_settings({"LOGS_DIR": str(tmp_path), "CACHE_DIR": str(tmp_path / "c2")})
    assert s2.cache_dir == tmp_path / "c2"


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"ENV": "staging"}, r"ENV must be one of dev, research, prod\. Got 'staging'"),
        ({"ALLOW_PROD_WRITE": "maybe"}, r"ALLOW_PROD_WRITE must be one of .* Got 'maybe'"),
        ({"EVENTBUS_URL": "kafka://x"}, r"EVENTBUS_URL must be 'memory://' or a Redis URL.* Got 'kafka://x'"),
        ({"ARTIFACT_HISTORY_COUNT": "-1"}, r"ARTIFACT_HISTORY_COUNT must be an integer >= 0\. Got '-1'"),
        ({"ARTIFACT_HISTORY_BYTES": "lots"}, r"ARTIFACT_HISTORY_BYTES must be an integer >= 0\. Got 'lots'"),
        ({"ARTIFACT_MAX_AGE_S": "0"}, r"ARTIFACT_MAX_AGE_S must be a number >= 1\.0\. Got '0'"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        load_settings(env)


def test_env_is_case_insensitive_and_bools_parse() -> None:
    s = load_settings({"ENV": "PROD", "ALLOW_PROD_WRITE": "yes"})
    assert (s.env, s.allow_prod_write) == ("prod", True)


def test_settings_are_frozen() -> None:
    s = load_settings({})
    with pytest.raises(AttributeError):
        s.env = "prod"  # type: ignore[misc]


def test_repr_redacts_secrets() -> None:
    s = load_settings(
        {
            "GOOGLE_APPLICATION_CREDENTIALS": "/secret/key.json",
            "EVENTBUS_URL": "redis://u:hunter2@127.0.0.1:6379/0",
        }
    )
    text = repr(s)
    assert "/secret/key.json" not in text
    assert "hunter2" not in text
    assert "<redacted>" in text


@pytest.mark.parametrize(
    ("env", "allow", "allowed"),
    [("dev", "0", True), ("research", "0", True), ("prod", "0", False), ("prod", "1", True)],
)
def test_prod_write_guard(env: str, allow: str, allowed: bool) -> None:
    s = load_settings({"ENV": env, "ALLOW_PROD_WRITE": allow})
    assert prod_write_allowed(s) is allowed
    if allowed:
        require_prod_write(s, "autotune thresholds")
    else:
        with pytest.raises(
            ProductionWriteRefused, match=r"Refusing to write autotune thresholds.*ALLOW_PROD_WRITE=1"
        ):
            require_prod_write(s, "autotune thresholds")


def test_research_env_guard() -> None:
    require_research_env(load_settings({"ENV": "research"}), "the RL runner")
    with pytest.raises(EnvironmentRefused, match=r"the RL runner refuses to run with ENV=prod"):
        require_research_env(load_settings({"ENV": "prod", "ALLOW_PROD_WRITE": "1"}), "the RL runner")
