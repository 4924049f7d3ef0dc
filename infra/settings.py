"""Process settings, read once from environment variables into a frozen object.

Every knob the platform reads from the environment is a field here, so a bad value fails
loudly at start-up with the variable's name and the allowed values instead of deep inside a job.

Examples
--------
>>> s = load_settings({"ENV": "research", "EVENTBUS_URL": "memory://"})
>>> s.env, s.allow_prod_write
('research', False)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Env = Literal["dev", "research", "prod"]
ENVS: tuple[Env, ...] = ("dev", "research", "prod")
FillEngine = Literal["auto", "duckdb", "pandas"]
FILL_ENGINES: tuple[FillEngine, ...] = ("auto", "duckdb", "pandas")

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable holds a value the platform cannot use."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be one of 1/0/true/false/yes/no/on/off. Got {raw!r} instead.")


def _parse_int(name: str, raw: str, *, minimum: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be an integer >= {minimum}. Got {raw!r} instead.") from None
    if value < minimum:
        raise SettingsError(f"{name} must be an integer >= {minimum}. Got {raw!r} instead.")
    return value


def _parse_float(name: str, raw: str, *, minimum: float, strict: bool = False) -> float:
    op = ">" if strict else ">="
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number {op} {minimum}. Got {raw!r} instead.") from None
    if not (value > minimum if strict else value >= minimum):  # also refuses NaN
        raise SettingsError(f"{name} must be a number {op} {minimum}. Got {raw!r} instead.")
    return value


def _opt_float(e: Mapping[str, str], name: str, default: float, *, minimum: float, strict: bool) -> float:
    """``e[name]`` as a number, ``default`` when unset or blank."""
    raw = e.get(name)
    if raw is None or not raw.strip():
        return default
    return _parse_float(name, raw, minimum=minimum, strict=strict)


def _parse_service_ports(e: Mapping[str, str]) -> dict[str, int]:
    """Every non-blank ``METRICS_PORT_<SERVICE>`` as ``{service: port}``, ports in [-1, 65535]."""
    ports: dict[str, int] = {}
    for name, raw in e.items():
        if not name.startswith("METRICS_PORT_") or not raw.strip():
            continue
        try:
            port = int(raw.strip())
        except ValueError:
            port = -2
        if not -1 <= port <= 65535:
            raise SettingsError(f"{name} must be an integer in [-1, 65535] (-1: off). Got {raw!r} instead.")
        ports[name.removeprefix("METRICS_PORT_").lower()] = port
    return ports


def _parse_bus_url(raw: str) -> str:
    url = raw.strip()
    if url == "memory://" or url.startswith(("redis://", "rediss://", "unix://")):
        return url
    raise SettingsError(
        "EVENTBUS_URL must be 'memory://' or a Redis URL such as 'redis://127.0.0.1:6379/0'. "
        f"Got {raw!r} instead."
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the platform reads from the environment.

    Fields map one-to-one to environment variables (upper-case names in brackets).
    """

    env: Env = "dev"
    """Deployment tier [ENV]: ``dev``, ``research`` or ``prod``."""
    allow_prod_write: bool = False
    """[ALLOW_PROD_WRITE] must be 1 for any write to production state while ``env == 'prod'``."""
    logs_dir: Path = PROJECT_ROOT / "logs"
    """Root of everything the platform writes [LOGS_DIR]."""
    data_dir: Path = PROJECT_ROOT / "logs" / "data"
    """Input data: bars, trades, signals, orders [DATA_DIR]."""
    cache_dir: Path = PROJECT_ROOT / "logs" / "cache"
    """Cached JSON artifacts [CACHE_DIR]."""
    research_dir: Path = PROJECT_ROOT / "logs" / "research"
    """Research outputs: RL runs, TensorBoard, checkpoints [RESEARCH_DIR]."""
    eventbus_url: str = "memory://"
    """Event bus [EVENTBUS_URL]: ``memory://`` or ``redis://host:port/db``."""
    firestore_project: str | None = None
    """Google Cloud project for the Firestore mirror [FIRESTORE_PROJECT or GOOGLE_CLOUD_PROJECT]."""
    firestore_emulator_host: str | None = None
    """``host:port`` of a Firestore emulator [FIRESTORE_EMULATOR_HOST]."""
    firestore_collection: str = "artifacts"
    """Collection the mirror writes artifacts into [FIRESTORE_COLLECTION]."""
    firestore_credentials: str | None = field(default=None, repr=False)
    """Service-account file [GOOGLE_APPLICATION_CREDENTIALS]; never shown in ``repr``."""
    artifact_history_count: int = 20
    """Previous versions kept per artifact [ARTIFACT_HISTORY_COUNT]."""
    artifact_history_bytes: int = 20_000_000
    """Total bytes of history kept per artifact [ARTIFACT_HISTORY_BYTES]."""
    artifact_max_age_s: float = 24 * 3600.0
    """Age after which an artifact counts as stale, in seconds [ARTIFACT_MAX_AGE_S]."""
    artifact_max_bytes: int = 50_000_000
    """Largest artifact written or read, in bytes [ARTIFACT_MAX_BYTES]; a bigger one is refused
    with its size named (a 500 MB artifact once made the doctor take 4.6 s and 1.67 GB)."""
    metrics_port: int = 9108
    """Loopback port for Prometheus ``/metrics`` of long-running services [METRICS_PORT]."""
    fill_engine: FillEngine = "auto"
    """Engine of the Router Health fill log [FILL_ENGINE]: ``auto`` (DuckDB for a partitioned
    folder or a large file), ``duckdb`` or ``pandas``."""
    duckdb_memory_limit: str = "500MB"
    """DuckDB ``memory_limit`` for fill-log queries [DUCKDB_MEMORY_LIMIT], e.g. ``500MB``, ``4GB``."""
    ray_address: str | None = None
    """Ray cluster for research sweeps [RAY_ADDRESS], e.g. ``ray://head:10001``; unset: a local Ray."""
    service_metrics_ports: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Per-service ``/metrics`` port overrides [METRICS_PORT_<SERVICE>], keyed by the lower-case
    service name (``METRICS_PORT_FEEDBACK_BRIDGE=9200`` -> ``{"feedback_bridge": 9200}``); -1 turns
    ``/metrics`` off, 0 picks a free port. :func:`infra.prom.service_metrics_port` adds the defaults."""
    eventbus_maxlen: int = 100_000
    """Approximate length cap of every Redis stream [EVENTBUS_MAXLEN]."""
    eventbus_socket_timeout_s: float = 5.0
    """Redis socket read/write timeout in seconds [EVENTBUS_SOCKET_TIMEOUT_S]."""
    eventbus_connect_timeout_s: float = 2.0
    """Redis connect timeout in seconds [EVENTBUS_CONNECT_TIMEOUT_S]."""
    eventbus_retry_deadline_s: float = 10.0
    """How long a bus call retries a lost Redis before it raises, in seconds [EVENTBUS_RETRY_DEADLINE_S]."""
    eventbus_backoff_cap_s: float = 2.0
    """Longest pause between two retries, in seconds [EVENTBUS_BACKOFF_CAP_S]."""
    doctor_data_max_age_h: float = 24.0
    """Age of the newest bar/trade beyond which the doctor calls data stale, in hours
    [DOCTOR_DATA_MAX_AGE_H]."""
    doctor_timeout_s: float = 0.8
    """Longest any single network probe of the doctor may take, in seconds [DOCTOR_TIMEOUT_S]."""

    @property
    def firestore_enabled(self) -> bool:
        """True when an emulator or a project is configured."""
        return bool(self.firestore_emulator_host or self.firestore_project)

    def __repr__(self) -> str:  # keep secrets out of logs
        creds = "<redacted>" if self.firestore_credentials else None
        return (
            f"Settings(env={self.env!r}, allow_prod_write={self.allow_prod_write}, "
            f"logs_dir='{self.logs_dir}', eventbus_url={_redact_url(self.eventbus_url)!r}, "
            f"firestore_project={self.firestore_project!r}, "
            f"firestore_emulator_host={self.firestore_emulator_host!r}, "
            f"firestore_credentials={creds!r})"
        )


def _redact_url(url: str) -> str:
    """Hide a password in ``scheme://user:password@host``."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``).

    Raises
    ------
    SettingsError
        Naming the variable, the allowed values and the value given.
    """
    e = os.environ if environ is None else environ
    raw_env = e.get("ENV", "dev").strip().lower() or "dev"
    if raw_env not in ENVS:
        raise SettingsError(f"ENV must be one of dev, research, prod. Got {e.get('ENV')!r} instead.")
    logs_dir = Path(e.get("LOGS_DIR", "") or PROJECT_ROOT / "logs").expanduser()
    return Settings(
        env=raw_env,
        allow_prod_write=_parse_bool("ALLOW_PROD_WRITE", e.get("ALLOW_PROD_WRITE", "0")),
        logs_dir=logs_dir,
        data_dir=Path(e.get("DATA_DIR", "") or logs_dir / "data").expanduser(),
        cache_dir=Path(e.get("CACHE_DIR", "") or logs_dir / "cache").expanduser(),
        research_dir=Path(e.get("RESEARCH_DIR", "") or logs_dir / "research").expanduser(),
        eventbus_url=_parse_bus_url(e.get("EVENTBUS_URL", "memory://") or "memory://"),
        firestore_project=(e.get("FIRESTORE_PROJECT") or e.get("GOOGLE_CLOUD_PROJECT") or None),
        firestore_emulator_host=e.get("FIRESTORE_EMULATOR_HOST") or None,
        firestore_collection=e.get("FIRESTORE_COLLECTION", "artifacts") or "artifacts",
        firestore_credentials=e.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
        artifact_history_count=_parse_int(
            "ARTIFACT_HISTORY_COUNT", e.get("ARTIFACT_HISTORY_COUNT", "20"), minimum=0
        ),
        artifact_history_bytes=_parse_int(
            "ARTIFACT_HISTORY_BYTES", e.get("ARTIFACT_HISTORY_BYTES", "20000000"), minimum=0
        ),
        artifact_max_age_s=_parse_float(
            "ARTIFACT_MAX_AGE_S", e.get("ARTIFACT_MAX_AGE_S", str(24 * 3600)), minimum=1.0
        ),
        artifact_max_bytes=_parse_int(
            "ARTIFACT_MAX_BYTES", e.get("ARTIFACT_MAX_BYTES", "50000000"), minimum=1024
        ),
        metrics_port=_parse_int("METRICS_PORT", e.get("METRICS_PORT", "9108"), minimum=1),
        fill_engine=_parse_fill_engine(e.get("FILL_ENGINE", "auto")),
        duckdb_memory_limit=_parse_memory(e.get("DUCKDB_MEMORY_LIMIT", "500MB")),
        ray_address=(e.get("RAY_ADDRESS") or "").strip() or None,
        service_metrics_ports=_parse_service_ports(e),
        eventbus_maxlen=_parse_int(
            "EVENTBUS_MAXLEN", (e.get("EVENTBUS_MAXLEN") or "").strip() or "100000", minimum=1
        ),
        eventbus_socket_timeout_s=_opt_float(e, "EVENTBUS_SOCKET_TIMEOUT_S", 5.0, minimum=0, strict=True),
        eventbus_connect_timeout_s=_opt_float(e, "EVENTBUS_CONNECT_TIMEOUT_S", 2.0, minimum=0, strict=True),
        eventbus_retry_deadline_s=_opt_float(e, "EVENTBUS_RETRY_DEADLINE_S", 10.0, minimum=0, strict=True),
        eventbus_backoff_cap_s=_opt_float(e, "EVENTBUS_BACKOFF_CAP_S", 2.0, minimum=0, strict=True),
        doctor_data_max_age_h=_opt_float(e, "DOCTOR_DATA_MAX_AGE_H", 24.0, minimum=0.0, strict=False),
        doctor_timeout_s=_opt_float(e, "DOCTOR_TIMEOUT_S", 0.8, minimum=0.05, strict=False),
    )


def _parse_fill_engine(raw: str) -> FillEngine:
    value = raw.strip().lower() or "auto"
    for engine in FILL_ENGINES:
        if value == engine:
            return engine
    raise SettingsError(f"FILL_ENGINE must be one of auto, duckdb, pandas. Got {raw!r} instead.")


def _parse_memory(raw: str) -> str:
    value = raw.strip() or "500MB"
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB)", value, flags=re.IGNORECASE):
        raise SettingsError(f"DUCKDB_MEMORY_LIMIT must look like 500MB or 2GB. Got {raw!r} instead.")
    return value
