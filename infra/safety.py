"""Production safety: the one place that decides whether a write to production state may happen.

DESIGN.md: in ``ENV=prod`` any write to production state (Firestore, thresholds, checkpoints
promoted for live use) requires ``ALLOW_PROD_WRITE=1``; the RL pilot and its runner refuse to run
unless ``ENV`` is ``dev`` or ``research``.
"""

from __future__ import annotations

from infra.settings import Settings


class ProductionWriteRefused(PermissionError):
    """A write to production state was refused by :func:`require_prod_write`."""


class EnvironmentRefused(PermissionError):
    """A research-only program was started in an environment it must not run in."""


def prod_write_allowed(settings: Settings) -> bool:
    """True unless ``ENV=prod`` without ``ALLOW_PROD_WRITE=1``."""
    return settings.env != "prod" or settings.allow_prod_write


def require_prod_write(settings: Settings, what: str) -> None:
    """Raise :class:`ProductionWriteRefused` when ``what`` may not be written.

    Parameters
    ----------
    what
        Human description of the write, e.g. ``"autotune thresholds"``; it appears in the error.
    """
    if not prod_write_allowed(settings):
        raise ProductionWriteRefused(
            f"Refusing to write {what}: ENV=prod and ALLOW_PROD_WRITE is not set. "
            "Production state is only written on purpose: re-run with ALLOW_PROD_WRITE=1 "
            "to allow it, or use ENV=dev / ENV=research."
        )


def require_research_env(settings: Settings, program: str) -> None:
    """Raise :class:`EnvironmentRefused` unless ``ENV`` is ``dev`` or ``research``."""
    if settings.env not in ("dev", "research"):
        raise EnvironmentRefused(
            f"{program} refuses to run with ENV={settings.env}: it is a research tool and only "
            "runs with ENV=dev or ENV=research."
        )
