"""The doctor's checks, one module per area; importing this package registers them in order.

See :mod:`scripts.doctor_checks.base` for the contract of a check and ``docs/doctor.md`` for the list.
"""

from __future__ import annotations

from scripts.doctor_checks import artifacts, data, jobs, system  # noqa: F401  (registration)
from scripts.doctor_checks.base import REGISTRY, CheckResult, DoctorContext, register

__all__ = ["REGISTRY", "CheckResult", "DoctorContext", "register"]
