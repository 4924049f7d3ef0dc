"""Reading the drift state out of the ``drift`` and ``retrain_triggers`` artifacts.

One interpretation shared by every reader (the doctor, the autotuner): a detection is *open*
until the retrain trigger it raised was promoted (the model was replaced and the detector reset).
A detection without a trigger, or whose trigger is pending, rejected or failed, stays open.

Pure: dicts in, dicts out; no files, no heavy imports.

Examples
--------
>>> drift = {"detections": [{"kind": "calibration_drift", "trigger_id": "rt-1", "n_trades": 900}]}
>>> [d["kind"] for d in open_detections(drift, {"triggers": [{"trigger_id": "rt-1", "outcome": "pending"}]})]
['calibration_drift']
>>> open_detections(drift, {"triggers": [{"trigger_id": "rt-1", "outcome": "promoted"}]})
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


def open_detections(drift_data: Any, triggers_data: Any = None) -> list[dict[str, Any]]:
    """Detections not yet answered by a promoted retrain, each with a ``trigger_state`` field.

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
    outcomes = trigger_outcomes(triggers_data)
    out = []
    for d in detections:
        if not isinstance(d, Mapping):
            continue
        state = outcomes.get(str(d.get("trigger_id")), str(d.get("trigger_status", "no trigger")))
        if state != "promoted":
            out.append({**d, "trigger_state": state})
    return out
