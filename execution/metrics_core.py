"""Shared plumbing for the metrics modules: input coercion, argument checks and column moments.

Every metric takes a 1-D array, a Series, a 2-D array or a DataFrame (one column per symbol) and
returns the matching shape: a scalar for 1-D input and one value per column for 2-D input (an
ndarray for an ndarray, a Series indexed by the columns for a DataFrame). Rolling metrics return
the input's own shape.

Missing values: NaN is skipped column by column (each column uses only its present values), so
columns of different lengths can share one frame. Infinite values are rejected with a
``ValueError``: a return of ``inf`` has no meaning and would silently poison every statistic.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["array1", "array2", "series", "frame"]
ReturnsLike = np.ndarray | pd.Series | pd.DataFrame | list[float]
"""Anything the metrics accept as returns: 1-D or 2-D, rows are periods, columns are symbols."""

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Panel:
    """Returns as a float64 ``(n_periods, n_columns)`` array plus what is needed to rebuild the shape."""

    values: np.ndarray
    kind: Kind
    index: pd.Index | None
    columns: pd.Index | None
    name: Hashable | None
    has_nan: bool


def _type_name(value: Any) -> str:
    return type(value).__name__


def as_panel(returns: Any, *, func: str, param: str = "returns") -> Panel:
    """Coerce ``returns`` to a :class:`Panel`, raising ``ValueError`` for anything non-numeric."""
    index: pd.Index | None = None
    columns: pd.Index | None = None
    name: Hashable | None = None
    if isinstance(returns, pd.DataFrame):
        kind: Kind = "frame"
        bad = [c for c in returns.columns if not pd.api.types.is_numeric_dtype(returns[c].dtype)]
        if bad:
            raise ValueError(
                f"The '{param}' parameter of {func} must hold numbers. "
                f"Column {bad[0]!r} has dtype {returns[bad[0]].dtype} instead."
            )
        values = returns.to_numpy(dtype=float, na_value=np.nan)
        index, columns = returns.index, returns.columns
    elif isinstance(returns, pd.Series):
        kind = "series"
        if not pd.api.types.is_numeric_dtype(returns.dtype):
            raise ValueError(
                f"The '{param}' parameter of {func} must hold numbers. Got a Series of dtype {returns.dtype} instead."
            )
        values = returns.to_numpy(dtype=float, na_value=np.nan)[:, None]
        index, name = returns.index, returns.name
    else:
        if isinstance(returns, str | bytes | numbers.Number):
            raise ValueError(
                f"The '{param}' parameter of {func} must be a 1-D or 2-D array, Series or DataFrame "
                f"of returns. Got {returns!r} ({_type_name(returns)}) instead."
            )
        try:
            arr = np.asarray(returns)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(
                f"The '{param}' parameter of {func} must be array-like numbers. Got {_type_name(returns)} instead."
            ) from exc
        if arr.dtype.kind not in "biuf":
            raise ValueError(
                f"The '{param}' parameter of {func} must hold numbers. Got an array of dtype {arr.dtype} instead."
            )
        if arr.ndim == 1:
            kind, values = "array1", arr.astype(float)[:, None]
        elif arr.ndim == 2:
            kind, values = "array2", arr.astype(float, copy=False)
        else:
            raise ValueError(
                f"The '{param}' parameter of {func} must be 1-D or 2-D. Got {arr.ndim} dimensions instead."
            )
    finite = np.isfinite(values)
    has_nan = False
    if not finite.all():
        inf = np.isinf(values)
        if inf.any():
            row, col = (int(i[0]) for i in np.nonzero(inf))
            where = f"row {row}" if values.shape[1] == 1 else f"row {row}, column {col}"
            raise ValueError(
                f"The '{param}' parameter of {func} must not contain infinite values. "
                f"Got {values[row, col]} at {where}."
            )
        has_nan = True
    return Panel(values=values, kind=kind, index=index, columns=columns, name=name, has_nan=has_nan)


def reduce_out(panel: Panel, arr: np.ndarray, *, name: str | None = None) -> Any:
    """Return one value per column in the input's shape (scalar for 1-D input)."""
    if panel.kind in ("array1", "series"):
        return float(arr[0])
    if panel.kind == "array2":
        return arr
    return pd.Series(arr, index=panel.columns, name=name)


def shape_out(panel: Panel, arr: np.ndarray) -> Any:
    """Return an ``(n_periods, n_columns)`` result in the input's own shape."""
    if panel.kind == "array1":
        return arr[:, 0]
    if panel.kind == "array2":
        return arr
    if panel.kind == "series":
        return pd.Series(arr[:, 0], index=panel.index, name=panel.name)
    return pd.DataFrame(arr, index=panel.index, columns=panel.columns)


# --------------------------------------------------------------------------- argument checks
def check_real(
    value: Any, *, param: str, func: str, positive: bool = False, minimum: float | None = None
) -> float:
    """A finite real number (not a bool or string); optionally > 0 or >= ``minimum``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(float(value))
    if ok and positive and not float(value) > 0:
        ok = False
    if ok and minimum is not None and not float(value) >= minimum:
        ok = False
    if not ok:
        need = "a finite number"
        if positive:
            need = "a finite number > 0"
        elif minimum is not None:
            need = f"a finite number >= {minimum:g}"
        raise ValueError(f"The '{param}' parameter of {func} must be {need}. Got {value!r} instead.")
    return float(value)


def check_int(value: Any, *, param: str, func: str, minimum: int) -> int:
    """An integer (not a bool, not a float) >= ``minimum``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) < minimum:
        raise ValueError(
            f"The '{param}' parameter of {func} must be an int >= {minimum}. Got {value!r} instead."
        )
    return int(value)


def check_choice(value: Any, *, param: str, func: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"The '{param}' parameter of {func} must be one of {list(choices)}. Got {value!r} instead."
        )
    return value


# --------------------------------------------------------------------------- column moments
@dataclass(frozen=True)
class Moments:
    """Per-column sample moments about the column mean; ``m{k}`` is the SUM of ``(x - mean)**k``."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    m3: np.ndarray | None
    m4: np.ndarray | None
    constant: np.ndarray
    """True where a column has at least one value and all its present values are equal."""


def _centred_power_sums(
    x: np.ndarray, mean: np.ndarray, present: np.ndarray | None, order: int
) -> list[np.ndarray]:
    """Column sums of ``(x - mean)**p`` for p = 1..order, in row chunks of about 256 KiB.

    Chunking keeps the deviation temporaries in cache instead of allocating (and page-faulting)
    a full-size array per power; the arithmetic is the same second pass of a two-pass algorithm.
    """
    n, k = x.shape
    step = max(1, 32_768 // max(k, 1))
    sums = [np.zeros(k) for _ in range(order)]
    for r0 in range(0, n, step):
        d = x[r0 : r0 + step] - mean
        if present is not None:
            d[~present[r0 : r0 + step]] = 0.0
        sums[0] += d.sum(axis=0)
        d2 = d * d
        sums[1] += d2.sum(axis=0)
        if order >= 3:
            sums[2] += np.einsum("ij,ij->j", d2, d)
            sums[3] += np.einsum("ij,ij->j", d2, d2)
    return sums


def column_moments(panel: Panel, *, order: int = 2, shift: float = 0.0) -> Moments:
    """Two-pass (centred, with the compensated mean correction) moments of ``values - shift``.

    The first pass takes the mean; the second sums powers of deviations from it. The small
    rounding ``e = sum(d) / n`` left in the mean is then removed exactly by the binomial
    identities (``M2 = S2 - n e**2``, the corrected two-pass formula of Chan, Golub & LeVeque
    1983, and likewise for ``M3``, ``M4``). Columns whose present values are all equal get exactly
    zero dispersion, so ratios over them become +/-inf or NaN rather than ~1e15.
    ``order`` is 2 (mean and ``m2``) or 4 (also ``m3`` and ``m4``).
    """
    x = panel.values if shift == 0.0 else panel.values - shift
    n_rows, k = x.shape
    present: np.ndarray | None = None
    with np.errstate(invalid="ignore", divide="ignore"):
        if panel.has_nan:
            present = ~np.isnan(x)
            count = present.sum(axis=0).astype(float)
            mean = np.nansum(x, axis=0) / count
        else:
            count = np.full(k, float(n_rows))
            mean = x.sum(axis=0) / count
        order = 4 if order >= 3 else 2
        s = _centred_power_sums(x, np.where(np.isfinite(mean), mean, 0.0), present, order)
        e = s[0] / count  # rounding left in the mean
        mean = mean + e
        m2 = np.maximum(s[1] - count * e * e, 0.0)
        m3 = m4 = None
        if order >= 3:
            m3 = s[2] - 3.0 * e * s[1] + 2.0 * count * e**3
            m4 = s[3] - 4.0 * e * s[2] + 6.0 * e * e * s[1] - 3.0 * count * e**4
    # exact zero dispersion for constant columns (only checked where the dispersion is tiny)
    constant = np.zeros(k, dtype=bool)
    suspicious = (count >= 1) & (m2 <= count * (64 * _EPS * np.abs(mean)) ** 2)
    if suspicious.any():
        cols = np.flatnonzero(suspicious)
        sub = x[:, cols]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            hi, lo = np.nanmax(sub, axis=0), np.nanmin(sub, axis=0)
        const_cols = cols[hi == lo]
        constant[const_cols] = True
        m2[const_cols] = 0.0
        mean[const_cols] = hi[hi == lo]
        if m3 is not None and m4 is not None:
            m3[const_cols] = 0.0
            m4[const_cols] = 0.0
    return Moments(count=count, mean=mean, m2=m2, m3=m3, m4=m4, constant=constant)
