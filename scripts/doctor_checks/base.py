"""The doctor's building blocks: check results, the context checks share, and the registry.

A check is a function ``check_<thing>(ctx: DoctorContext) -> CheckResult | list[CheckResult]``
registered with :func:`register`. It never raises on a bad store or file (the runner turns an
unexpected exception into a FAIL naming the check), never waits on the network for longer than
``ctx.timeout_s``, and its message says what is wrong and how to fix it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.artifacts import ArtifactStore
from infra.settings import Settings

Status = Literal["OK", "WARN", "FAIL"]
STATUS_ORDER: dict[str, int] = {"OK": 0, "WARN": 1, "FAIL": 2}

DEMO_COMMAND = "python -m scripts.demo"


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    ``message`` is one line saying what is wrong (or what is fine); ``fix`` is the command or
    action that repairs it (empty when OK); ``details`` holds the numbers behind the verdict.
    """

    name: str
    status: Status
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "details": self.details,
            "fix": self.fix,
        }


def ok(name: str, message: str, **details: Any) -> CheckResult:
    return CheckResult(name, "OK", message, details)


def warn(name: str, message: str, fix: str, **details: Any) -> CheckResult:
    return CheckResult(name, "WARN", message, details, fix)


def fail(name: str, message: str, fix: str, **details: Any) -> CheckResult:
    return CheckResult(name, "FAIL", message, details, fix)


@dataclass
class DoctorContext:
    """What every check may use.

    Parameters
    ----------
    settings
        The process settings.
    store
        The artifact store to read (no Firestore mirror: reading never touches the network).
    now
        Reference time for ages (UTC).
    data_max_age_s
        Age of the newest bar/trade beyond which data counts as stale
        (``settings.doctor_data_max_age_h``, env ``DOCTOR_DATA_MAX_AGE_H``).
    timeout_s
        Longest any single network probe may take (``settings.doctor_timeout_s``, env
        ``DOCTOR_TIMEOUT_S``).
    """

    settings: Settings
    store: ArtifactStore
    now: dt.datetime
    data_max_age_s: float = 24 * 3600.0
    timeout_s: float = 0.8
    shared: dict[str, Any] = field(default_factory=dict)
    """Results one check computes for another (e.g. route confidences for the artifact)."""

    @classmethod
    def from_env(
        cls,
        settings: Settings,
        store: ArtifactStore,
        *,
        now: dt.datetime,
        environ: Mapping[str, str] | None = None,
    ) -> DoctorContext:
        """The context for ``settings``; its limits come from ``settings.doctor_*``.

        ``environ`` is accepted for callers that still pass the mapping ``settings`` was
        loaded from; every knob is read from ``settings`` (one place parses the environment).
        """
        del environ
        return cls(
            settings=settings,
            store=store,
            now=now,
            data_max_age_s=settings.doctor_data_max_age_h * 3600.0,
            timeout_s=settings.doctor_timeout_s,
        )


CheckFunc = Callable[[DoctorContext], "CheckResult | list[CheckResult]"]
REGISTRY: list[tuple[str, CheckFunc]] = []
_ORDER: dict[str, int] = {}


def register(name: str, *, order: int = 100) -> Callable[[CheckFunc], CheckFunc]:
    """Decorator adding a check to :data:`REGISTRY` under ``name``; checks run by ``order``."""

    def deco(func: CheckFunc) -> CheckFunc:
        if any(n == name for n, _ in REGISTRY):
            raise ValueError(f"a doctor check named {name!r} is already registered")
        _ORDER[name] = order
        REGISTRY.append((name, func))
        REGISTRY.sort(key=lambda nf: _ORDER[nf[0]])
        return func

    return deco


def age_text(seconds: float) -> str:
    """``'3.2 h'`` / ``'5.0 d'`` / ``'42 s'``."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"
