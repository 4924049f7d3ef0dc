"""Typed contracts for every artifact's ``data``, declared once and used by writer and readers.

An artifact is the envelope ``{schema_version, name, generated_at, env, source, data}``
(:mod:`infra.artifacts`). Each platform artifact's ``data`` is a msgspec Struct registered here
with its schema version and its single writer:

======================  ==========================  =========================================
name                    ``data`` Struct             writer
======================  ==========================  =========================================
``ml_telemetry``        :class:`MlTelemetryData`    ``ml.telemetry``
``drift``               :class:`DriftData`          ``ml.drift_service``
``retrain_triggers``    :class:`RetrainTriggersData` ``ml.drift_service`` (``TriggerQueue.to_dict``)
``retrain_jobs``        :class:`RetrainJobsData`    ``ml.retrain_worker``
``retrain``             :class:`RetrainDemoData`    ``scripts.demo_steps.retrain``
``feedback``            :class:`FeedbackData`       ``scripts.demo_steps.feedback``
``autotune``            :class:`AutotuneData`       ``execution.risk_autotune``
``autotune_dry_run``    :class:`AutotuneData`       ``execution.risk_autotune --dry-run``
``doctor``              :class:`DoctorData`         ``scripts.doctor``
``demo_data``           :class:`DemoDataData`       ``scripts.demo``
``rl_pilot``            :class:`RlPilotData`        ``research.rl_sizer.pilot_artifact``
``learning_loop``       :class:`LearningLoopData`   ``scripts.demo_steps.learning_demo``
======================  ==========================  =========================================

:meth:`infra.artifacts.ArtifactStore.write` validates ``data`` against the contract before
anything touches the disk (a writer cannot write what its readers would refuse), and
:func:`infra.artifacts.read_artifact_file` decodes it into the Struct (``result.typed``), so
readers read fields instead of guessing key paths. A name that is not registered (a user's own
artifact) is written and read as a plain mapping.

Examples
--------
>>> decode_data("feedback", {"counts": {"tracked": 2, "closed": 2, "dead_lettered": 0}}).counts.closed
2
>>> try:
...     decode_data("feedback", {"counts": {"tracked": 2, "closed": 2, "dead_lettered": float("nan")}})
... except ArtifactDataError as exc:
...     print(exc)
feedback: field $.counts.dead_lettered is nan: a finite number is required
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from infra.contracts.ml_artifacts import (
    DriftData,
    MlTelemetryData,
    RetrainDemoData,
    RetrainJobsData,
    RetrainTriggersData,
)
from infra.contracts.ops_artifacts import (
    AutotuneData,
    DemoDataData,
    DoctorData,
    FeedbackData,
    LearningLoopData,
    RlPilotData,
)

__all__ = [
    "REGISTRY",
    "ArtifactContract",
    "ArtifactDataError",
    "contract_for",
    "decode_data",
    "encode_data",
]


@dataclass(frozen=True)
class ArtifactContract:
    """One artifact's contract: its ``data`` Struct, schema version and single writer."""

    name: str
    data_type: type[msgspec.Struct]
    schema_version: int
    writer: str


REGISTRY: dict[str, ArtifactContract] = {
    c.name: c
    for c in (
        ArtifactContract("ml_telemetry", MlTelemetryData, 1, "ml.telemetry"),
        ArtifactContract("drift", DriftData, 1, "ml.drift_service"),
        ArtifactContract("retrain_triggers", RetrainTriggersData, 1, "ml.drift_service"),
        ArtifactContract("retrain_jobs", RetrainJobsData, 1, "ml.retrain_worker"),
        ArtifactContract("retrain", RetrainDemoData, 1, "scripts.demo_steps.retrain"),
        ArtifactContract("feedback", FeedbackData, 1, "scripts.demo_steps.feedback"),
        ArtifactContract("autotune", AutotuneData, 1, "execution.risk_autotune"),
        ArtifactContract("autotune_dry_run", AutotuneData, 1, "execution.risk_autotune"),
        ArtifactContract("doctor", DoctorData, 1, "scripts.doctor"),
        ArtifactContract("demo_data", DemoDataData, 1, "scripts.demo"),
        ArtifactContract("rl_pilot", RlPilotData, 1, "research.rl_sizer.pilot_artifact"),
        ArtifactContract("learning_loop", LearningLoopData, 1, "scripts.demo_steps.learning_demo"),
    )
}
"""``name -> contract`` for every platform artifact."""


def contract_for(name: str) -> ArtifactContract | None:
    """The registered contract of artifact ``name``, or ``None`` for a user's own artifact."""
    return REGISTRY.get(name)


class ArtifactDataError(ValueError):
    """An artifact's ``data`` breaks its contract.

    ``field`` is the JSON path of the offending value (``$.calibration.ece``; ``$`` for the
    top level), ``value`` the value found there (``None`` when the field is missing).
    """

    def __init__(self, name: str, field: str, value: Any, reason: str) -> None:
        self.artifact = name
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{name}: field {field} {reason}")


_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")
_BOUND = re.compile(r"Expected `float` (>=|<=) (\S+)|Expected `int` (>=|<=) (\S+)")
_MISSING = re.compile(r"Object missing required field `([^`]+)`")


def _bad_leaf(value: Any, message: str) -> bool:
    """Whether ``value`` is plausibly what ``message`` complains about."""
    if isinstance(value, float) and not math.isfinite(value):
        return True
    m = _BOUND.search(message)
    if m is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        op, bound = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return float(value) < float(bound) if op == ">=" else float(value) > float(bound)
    return "got" in message and not isinstance(value, (int, float))


def _resolve(data: Any, segments: list[str], message: str) -> tuple[str, Any]:
    """Walk ``segments`` into ``data``; a ``[...]`` (a mapping value) is resolved to the key whose
    value is the bad one. Returns the concrete path and the value found (``None`` if absent)."""
    path = "$"
    cur = data
    for i, seg in enumerate(segments):
        if seg == "[...]" and isinstance(cur, dict):
            rest = segments[i + 1 :]
            for key, sub in cur.items():
                sub_path, leaf = _resolve(sub, rest, message)
                if _bad_leaf(leaf, message):
                    return f"{path}[{key!r}]" + sub_path[1:], leaf
            return path + "[...]", None
        if seg.startswith("["):
            idx = int(seg[1:-1])
            path += seg
            cur = cur[idx] if isinstance(cur, list) and idx < len(cur) else None
        else:
            path += seg
            cur = cur.get(seg[1:]) if isinstance(cur, dict) else None
    return path, cur


def _explain(name: str, data: Any, exc: msgspec.ValidationError) -> ArtifactDataError:
    text = str(exc)
    message, _, where = text.partition(" - at `")
    where = where.rstrip("`") or "$"
    segments = [m.group(0) for m in _SEGMENT.finditer(where[1:])]
    path, value = _resolve(data, segments, message)
    missing = _MISSING.match(message)
    if missing:
        field = f"{path}.{missing.group(1)}"
        return ArtifactDataError(name, field, None, "is missing (required by the contract)")
    if isinstance(value, float) and not math.isfinite(value):
        return ArtifactDataError(name, path, value, f"is {value!r}: a finite number is required")
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    reason = message[0].lower() + message[1:] if message else "is invalid"
    return ArtifactDataError(name, path, value, f"= {shown}: {reason}")


def decode_data(name: str, data: Any) -> msgspec.Struct | None:
    """``data`` of artifact ``name`` as its contract's Struct (``None`` for an unregistered name).

    ``data`` is the plain JSON value (non-finite floats already restored by :mod:`infra.jsonio`).

    Raises
    ------
    ArtifactDataError
        Naming the artifact, the field path and the bad value.
    """
    contract = REGISTRY.get(name)
    if contract is None:
        return None
    try:
        return msgspec.convert(data, contract.data_type)
    except msgspec.ValidationError as exc:
        raise _explain(name, data, exc) from None


def encode_data(name: str, data: Any) -> Any:
    """Validate what a writer passes as artifact ``name``'s ``data``; return the plain JSON value.

    A Struct is encoded with ``msgspec.to_builtins`` (it must be the registered type); a mapping
    is checked against the contract and written as given, so fields a newer writer adds survive.
    Either way the value is decoded once more, because constructing a Struct does not check its
    constraints (a NaN in a promised number must not reach the disk).
    """
    from infra import jsonio

    contract = REGISTRY.get(name)
    if isinstance(data, msgspec.Struct):
        if contract is not None and not isinstance(data, contract.data_type):
            raise TypeError(
                f"artifact {name!r} takes {contract.data_type.__name__} as data, got {type(data).__name__}"
            )
        plain = msgspec.to_builtins(data, enc_hook=jsonio.to_jsonable)  # NumPy values in mappings
    else:
        plain = data
    if contract is not None:
        decode_data(name, jsonio.loads(jsonio.dumps(plain)))
    return plain
