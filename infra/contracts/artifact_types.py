"""Constrained field types shared by the artifact contracts (:mod:`infra.contracts.artifacts`).

msgspec checks each constraint while it decodes, and names the field path of a value that breaks
one (``$.calibration.ece``). Floats carry their promise in their type:

* :data:`Finite`: a real number. NaN and +-inf are refused (``ge``/``le`` at the largest double:
  every comparison with NaN is false, so NaN fails ``ge``; inf fails ``le``).
* :data:`Unit`: a finite number in ``[0, 1]`` (probabilities, confidences, calibration errors).
* :data:`MaybeNaN`: a float that is documented to be NaN when undefined (e.g. the hit rate of an
  empty reliability bin); readers must show it as "n/a".
* ``Finite | None``: a number that may be absent (JSON ``null``) but is never NaN.

Timestamps are ISO 8601 strings that must carry a timezone (:data:`Timestamp`).
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import msgspec

_MAX = sys.float_info.max

Finite = Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX, description="a finite number (no NaN, no inf)")]
Unit = Annotated[float, msgspec.Meta(ge=0.0, le=1.0, description="a finite number in [0, 1]")]
NonNeg = Annotated[float, msgspec.Meta(ge=0.0, le=_MAX, description="a finite number >= 0")]
MaybeNaN = float
"""A float that is NaN when undefined (documented per field); never used for a promised number."""
Count = Annotated[int, msgspec.Meta(ge=0)]
Timestamp = Annotated[dt.datetime, msgspec.Meta(tz=True, description="ISO 8601 with a timezone")]
