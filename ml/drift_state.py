"""Reading the drift state out of the ``drift``, ``retrain_triggers`` and ``retrain_jobs`` artifacts.

One interpretation shared by every reader (the doctor, the autotuner, the Drift tab). Each
artifact has one writer: ``drift`` and ``retrain_triggers`` are written by ``ml.drift_service``,
``retrain_jobs`` by ``ml.retrain_worker``. The outcome of a retrain is therefore read from the
worker's own record (``retrain_jobs``, matched by ``trigger_id``) first, then from the trigger
queue (the drift service copies the jobs' outcomes into it on every run), then from the status
the detection got when it was submitted.

A detection is *open* while

* it belongs to the model the drift artifact calls current (``current_model``; a detection of a
  model that a promotion has replaced is answered: the new model starts from zero), and
* its retrain trigger was not promoted.

A detection without a trigger, or whose trigger is pending, rejected or failed, stays open.

Pure: dicts in, dicts out; no files, no heavy imports.

Examples
--------
>>> drift = {"detections": [{"kind": "calibration_drift", "trigger_id": "rt-1", "n_trades": 900}]}
>>> [d["kind"] for d in open_detections(drift, {"triggers": [{"trigger_id": "rt-1", "outcome": "pending"}]})]
['calibration_drift']
>>> open_detections(drift, {"triggers": [{"trigger_id": "rt-1", "outcome": "promoted"}]})
[]
>>> jobs = {"jobs": [{"trigger_id": "rt-1", "outcome": "promoted"}]}
>>> open_detections(drift, {"triggers": [{"trigger_id": "rt-1", "outcome": "pending"}]}, jobs)
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DriftArtifactError(ValueError):
    """The ``drift`` artifact's data lacks the fields ``ml.drift_service`` writes."""


def trigger_outcomes(triggers_data: Any) -> dict[str, str]:
    """``trigger_id -> outcome`` from ``retrain_triggers`` data (empty when absent or malformed)."""
    items = triggers_data.get("triggers") if isinstance(triggers_data, Mapping) else None
    if not isinstance(items, list):
        return {}
    return {
        str(t.get("trigger_id")): str(t.get("outcome", "unknown")) for t in items if isinstance(t, Mapping)
    }


def job_outcomes(jobs_data: Any) -> dict[str, str]:
    """``trigger_id -> outcome`` from ``retrain_jobs`` data (the worker's record; empty when absent)."""
    items = jobs_data.get("jobs") if isinstance(jobs_data, Mapping) else None
    if not isinstance(items, list):
        return {}
    return {
        str(j.get("trigger_id")): str(j.get("outcome", "unknown"))
        for j in items
        if isinstance(j, Mapping) and j.get("outcome") in ("promoted", "rejected", "failed")
    }


def current_model(drift_data: Any) -> str | None:
    """The model version whose detector the drift artifact calls current (``None`` if not recorded)."""
    if not isinstance(drift_data, Mapping):
        return None
    cur = drift_data.get("current_model")
    return None if cur is None else str(cur)


def open_detections(
    drift_data: Any, triggers_data: Any = None, jobs_data: Any = None
) -> list[dict[str, Any]]:
    """Detections of the current model not yet answered by a promoted retrain.

    Each returned detection carries a ``trigger_state`` field: the retrain outcome from
    ``jobs_data`` (``retrain_jobs``), else from ``triggers_data`` (``retrain_triggers``), else the
    detection's own ``trigger_status``.

    Raises
    ------
    DriftArtifactError
        When ``drift_data`` has no ``detections`` list.
    """
    detections = drift_data.get("detections") if isinstance(drift_data, Mapping) else None
    if not isinstance(detections, list):
        raise DriftArtifactError(
            "drift artifact data lacks a 'detections' list (not written by ml.drift_service?)"
        )
    outcomes = {**trigger_outcomes(triggers_data), **job_outcomes(jobs_data)}
    current = current_model(drift_data)
    out = []
    for d in detections:
        if not isinstance(d, Mapping):
            continue
        if current is not None and d.get("model") is not None and str(d.get("model")) != current:
            continue  # a replaced model's detection: answered by the promotion
        state = outcomes.get(str(d.get("trigger_id")), str(d.get("trigger_status", "no trigger")))
        if state != "promoted":
            out.append({**d, "trigger_state": state})
    return out
