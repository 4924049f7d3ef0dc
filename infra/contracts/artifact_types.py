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

from typing import Annotated

import msgspec

# the number and time types are the events' own (one definition of "finite", "in [0, 1]", "aware")
from infra.contracts.events import AwareTime as Timestamp
from infra.contracts.events import Finite
from infra.contracts.events import NonNegative as NonNeg
from infra.contracts.events import Probability as Unit

__all__ = ["Count", "Finite", "MaybeNaN", "NonNeg", "Timestamp", "Unit"]

MaybeNaN = float
"""A float that is NaN when undefined (documented per field); never used for a promised number."""
Count = Annotated[int, msgspec.Meta(ge=0)]
