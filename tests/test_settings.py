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
        ({"EVENTBUS_MAXLEN": "0"}, r"EVENTBUS_MAXLEN must be an integer >= 1\. Got '0'"),
        ({"EVENTBUS_SOCKET_TIMEOUT_S": "0"}, r"EVENTBUS_SOCKET_TIMEOUT_S must be a number > 0\. Got '0'"),
        (
            {"EVENTBUS_CONNECT_TIMEOUT_S": "nan"},
            r"EVENTBUS_CONNECT_TIMEOUT_S must be a number > 0\. Got 'nan'",
        ),
        ({"EVENTBUS_BACKOFF_CAP_S": "x"}, r"EVENTBUS_BACKOFF_CAP_S must be a number > 0\. Got 'x'"),
        ({"DOCTOR_DATA_MAX_AGE_H": "-1"}, r"DOCTOR_DATA_MAX_AGE_H must be a number >= 0\.0\. Got '-1'"),
        ({"DOCTOR_TIMEOUT_S": "0.01"}, r"DOCTOR_TIMEOUT_S must be a number >= 0\.05\. Got '0.01'"),
        (
            {"METRICS_PORT_DRIFT_SERVICE": "70000"},
            r"METRICS_PORT_DRIFT_SERVICE must be an integer in \[-1, 65535\].* Got '70000'",
        ),
        (
            {"METRICS_PORT_TRAINER": "-2"},
            r"METRICS_PORT_TRAINER must be an integer in \[-1, 65535\].* Got '-2'",
        ),
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


def test_component_knobs_default_and_parse() -> None:
    """The bus, doctor and per-service port knobs are Settings fields like every other variable."""
    from infra.bus.topics import DEFAULT_MAXLEN

    d = load_settings({})
    assert d.eventbus_maxlen == DEFAULT_MAXLEN == 100_000
    assert (d.eventbus_socket_timeout_s, d.eventbus_connect_timeout_s) == (5.0, 2.0)
    assert (d.eventbus_retry_deadline_s, d.eventbus_backoff_cap_s) == (10.0, 2.0)
    assert (d.doctor_data_max_age_h, d.doctor_timeout_s) == (24.0, 0.8)
    assert dict(d.service_metrics_ports) == {}
    s = load_settings(
        {
            "EVENTBUS_MAXLEN": " 500 ",
            "EVENTBUS_RETRY_DEADLINE_S": "3",
            "DOCTOR_DATA_MAX_AGE_H": "100",
            "DOCTOR_TIMEOUT_S": "",  # blank: the default
            "METRICS_PORT_FEEDBACK_BRIDGE": "-1",
            "METRICS_PORT_RETRAIN_WORKER": " 9200 ",
            "METRICS_PORT_DRIFT_SERVICE": "",
        }
    )
    assert (s.eventbus_maxlen, s.eventbus_retry_deadline_s) == (500, 3.0)
    assert (s.doctor_data_max_age_h, s.doctor_timeout_s) == (100.0, 0.8)
    assert dict(s.service_metrics_ports) == {"feedback_bridge": -1, "retrain_worker": 9200}
    hash(s)  # a mapping field does not make Settings unhashable


def test_doctor_context_reads_its_limits_from_settings(tmp_path: Path) -> None:
    from infra.artifacts import ArtifactStore
    from infra.timeutil import utcnow
    from scripts.doctor_checks.base import DoctorContext

    s = load_settings({"LOGS_DIR": str(tmp_path), "DOCTOR_DATA_MAX_AGE_H": "2", "DOCTOR_TIMEOUT_S": "0.3"})
    ctx = DoctorContext.from_env(s, ArtifactStore.from_settings(s), now=utcnow())
    assert (ctx.data_max_age_s, ctx.timeout_s) == (7200.0, 0.3)
