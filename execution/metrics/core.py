"""Shared plumbing for the metrics modules: input coercion, argument checks and column moments.

Why this file is long: the coercion of every accepted input shape and the numerically careful
column moments are the foundation every metric module stands on.

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
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from infra.validate import check_choice as check_choice
from infra.validate import check_int as check_int
from infra.validate import check_real as check_real

Kind = Literal["array1", "array2", "series", "frame"]
ReturnsLike = np.ndarray | pd.Series | pd.DataFrame | list[float]
"""Anything the metrics accept as returns: 1-D or 2-D, rows are periods, columns are symbols."""

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Panel:
    """Returns as a float64 ``(n_periods, n_columns)`` array plus what is needed to rebuild the shape.

    ``hi`` and ``lo`` are each column's largest and smallest present value (NaN for a column with
    none), from the same cheap pass that checks the input for NaN and infinity. ``scale`` is None
    for ordinary returns; when a column's magnitude is so large (above ``2**200``) or so small
    (below ``2**-150``) that its squares or fourth powers would overflow or underflow, ``values``
    holds the columns divided by ``scale`` (one power of two per column, so the division is
    exact) and every metric that is not scale-free multiplies back (:meth:`unscaled`).
    """

    values: np.ndarray
    kind: Kind
    index: pd.Index | None
    columns: pd.Index | None
    name: Hashable | None
    has_nan: bool
    hi: np.ndarray
    lo: np.ndarray
    scale: np.ndarray | None = None

    def unscaled(self) -> np.ndarray:
        """The input values in their own units (``values * scale``; ``values`` itself when unscaled)."""
        if self.scale is None:
            return self.values
        with np.errstate(over="ignore"):
            return self.values * self.scale

    def per_column(self, value: float) -> float | np.ndarray:
        """A per-period constant (risk-free rate, target) in the units of ``values``."""
        if self.scale is None or value == 0.0:
            return value
        return value / self.scale


def _type_name(value: Any) -> str:
    return type(value).__name__


_SCALE_HI = 2.0**200  # (2**200)**4 * 1e6 rows is far below the float64 maximum
_SCALE_LO = 2.0**-150  # (2**-150)**4 is far above the smallest normal float64


def _frame_values(returns: pd.DataFrame, *, func: str, param: str) -> np.ndarray:
    """A DataFrame's values as float64, checking dtypes once per distinct dtype (not per column)."""
    dtypes = returns.dtypes
    distinct = set(dtypes.tolist())
    for dt in distinct:
        if not pd.api.types.is_numeric_dtype(dt):
            first = int(np.flatnonzero((dtypes == dt).to_numpy())[0])
            raise ValueError(
                f"The '{param}' parameter of {func} must hold numbers. "
                f"Column {returns.columns[first]!r} has dtype {dt} instead."
            )
    if all(isinstance(dt, np.dtype) for dt in distinct):
        # numpy dtypes only: no missing-value sentinel to translate; a view when all are float64
        return np.asarray(returns.to_numpy(dtype=float))
    return np.asarray(returns.to_numpy(dtype=float, na_value=np.nan))


def as_panel(returns: Any, *, func: str, param: str = "returns") -> Panel:
    """Coerce ``returns`` to a :class:`Panel`, raising ``ValueError`` for anything non-numeric.

    The work does not depend on the number of columns beyond vectorised numpy passes: a
    DataFrame's dtypes are checked once per distinct dtype and its values taken in one
    ``to_numpy`` call (a view when every column is float64). One max and one min per column
    detect NaN and infinity (NaN propagates through ``max``) and give the range used for the
    exact-zero dispersion of constant columns and for rescaling extreme magnitudes.
    """
    index: pd.Index | None = None
    columns: pd.Index | None = None
    name: Hashable | None = None
    if isinstance(returns, pd.DataFrame):
        kind: Kind = "frame"
        values = _frame_values(returns, func=func, param=param)
        index, columns = returns.index, returns.columns
    elif isinstance(returns, pd.Series):
        kind = "series"
        if not pd.api.types.is_numeric_dtype(returns.dtype):
            raise ValueError(
                f"The '{param}' parameter of {func} must hold numbers. Got a Series of dtype {returns.dtype} instead."
            )
        if isinstance(returns.dtype, np.dtype):
            values = np.asarray(returns.to_numpy(dtype=float))[:, None]
        else:
            values = np.asarray(returns.to_numpy(dtype=float, na_value=np.nan))[:, None]
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
            kind, values = "array1", arr.astype(float, copy=False)[:, None]
        elif arr.ndim == 2:
            kind, values = "array2", arr.astype(float, copy=False)
        else:
            raise ValueError(
                f"The '{param}' parameter of {func} must be 1-D or 2-D. Got {arr.ndim} dimensions instead."
            )
    n, k = values.shape
    if n < 32 and values.flags.f_contiguous and not values.flags.c_contiguous:
        # a short, wide frame is column-major; per-column reductions of a few values each are
        # slow (max over 10 rows x 1e5 columns: 14 ms), row-major ones vectorise across columns
        values = np.ascontiguousarray(values)
    if n == 0:
        hi = lo = np.full(k, np.nan)
        return Panel(values, kind, index, columns, name, False, hi, lo)
    hi, lo = values.max(axis=0), values.min(axis=0)  # NaN propagates: one cheap pass each
    has_nan = False
    if not (np.isfinite(hi).all() and np.isfinite(lo).all()):
        inf = np.isinf(values)
        if inf.any():
            row, col = (int(i[0]) for i in np.nonzero(inf))
            where = f"row {row}" if k == 1 else f"row {row}, column {col}"
            raise ValueError(
                f"The '{param}' parameter of {func} must not contain infinite values. "
                f"Got {values[row, col]} at {where}."
            )
        has_nan = True
        hi, lo = np.fmax.reduce(values, axis=0), np.fmin.reduce(values, axis=0)  # NaN-skipping
    top = np.fmax(np.abs(hi), np.abs(lo))
    extreme = (top > _SCALE_HI) | ((top < _SCALE_LO) & (top > 0))
    scale: np.ndarray | None = None
    if extreme.any():
        # one power of two per column (exact division): the largest magnitude lands in [1, 2)
        _, exponent = np.frexp(np.where(extreme, top, 1.0))
        scale = np.where(extreme, np.ldexp(1.0, exponent - 1), 1.0)
        values = values / scale
        hi, lo = hi / scale, lo / scale
    return Panel(values, kind, index, columns, name, has_nan, hi, lo, scale)


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
# check_real, check_int and check_choice live in infra.validate (one message format everywhere);
# the metrics modules import them from here with the rest of their plumbing.


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


def _two_pass(
    x: np.ndarray, present: np.ndarray | None, count: np.ndarray, order: int
) -> tuple[np.ndarray, ...]:
    """Mean and centred power sums by the corrected two-pass algorithm (Chan, Golub & LeVeque 1983)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (np.where(present, x, 0.0).sum(axis=0) if present is not None else x.sum(axis=0)) / count
        s = _centred_power_sums(x, np.where(np.isfinite(mean), mean, 0.0), present, order)
        e = s[0] / count  # rounding left in the mean
        mean = mean + e
        m2 = np.maximum(s[1] - count * e * e, 0.0)
        if order < 4:
            return mean, m2
        m3 = s[2] - 3.0 * e * s[1] + 2.0 * count * e**3
        m4 = s[3] - 4.0 * e * s[2] + 6.0 * e * e * s[1] - 3.0 * count * e**4
    return mean, m2, m3, m4


_CONSTANT_ULPS = 4.0
"""A column whose range is at most this many ulps of its magnitude counts as constant."""

_WELL_CONDITIONED = 16.0
"""One-pass variance is used where ``n * mean**2 <= 16 * M2``: the cancellation in
``sum(x**2) - n * mean**2`` then costs at most a factor 17 of rounding (about 1e-14 relative)."""


def column_moments(panel: Panel, *, order: int = 2, shift: float = 0.0) -> Moments:
    """Per-column mean and sums of centred powers of ``values - shift``.

    ``order`` is 2 (mean and ``m2``) or 4 (also ``m3`` and ``m4``).

    Order 2 takes the fast road where it is exact enough: the column sums and sums of squares in
    one pass each (no temporaries), ``M2 = S2 - S1**2 / n``. That formula loses digits to
    cancellation when the mean is large against the spread, so every column with
    ``n * mean**2 > 16 * M2`` (the relative error would exceed ~17 ulp) is recomputed by the
    two-pass algorithm with the compensated mean correction (Chan, Golub & LeVeque 1983):
    the first pass takes the mean, the second sums powers of deviations from it, and the rounding
    ``e = sum(d) / n`` left in the mean is removed by the binomial identities
    (``M2 = S2 - n e**2``, likewise for ``M3``, ``M4``). Order 4 always uses the two-pass form.

    Columns whose present values are all equal (``max == min``, exactly) get exactly zero
    dispersion, so ratios over them become +/-inf or NaN rather than ~1e15.
    """
    x = panel.values
    shift_v = panel.per_column(shift)
    if shift != 0.0:
        x = x - shift_v
    n_rows, k = x.shape
    present: np.ndarray | None = None
    xz = x
    if panel.has_nan:
        isnan = np.isnan(x)
        present = ~isnan
        count = (n_rows - isnan.sum(axis=0)).astype(float)
        xz = np.where(isnan, 0.0, x)
    else:
        count = np.full(k, float(n_rows))
    m3 = m4 = None
    with np.errstate(invalid="ignore", divide="ignore"):
        if order < 3:
            s1 = xz.sum(axis=0)
            s2 = np.einsum("ij,ij->j", xz, xz)
            mean = s1 / count
            m2 = s2 - s1 * mean
            redo = ~(_WELL_CONDITIONED * m2 > s1 * mean) & (count > 0)  # n * mean**2 >= 16 * M2, or M2 <= 0
            if redo.any():
                cols = np.flatnonzero(redo)
                sub_present = present[:, cols] if present is not None else None
                mean[cols], m2[cols] = _two_pass(x[:, cols], sub_present, count[cols], 2)
            m2 = np.maximum(m2, 0.0)
        else:
            mean, m2, m3, m4 = _two_pass(x, present, count, 4)
    # zero dispersion for constant columns: every present value equal, or within the rounding of
    # the arithmetic that made them (range <= 4 ulp of the magnitude; e.g. r - rf for r = c + rf)
    top = np.fmax(np.abs(panel.hi), np.abs(panel.lo))
    with np.errstate(invalid="ignore"):
        constant = (count >= 1) & (panel.hi - panel.lo <= _CONSTANT_ULPS * _EPS * top)
    if constant.any():
        const_cols = np.flatnonzero(constant)
        m2[const_cols] = 0.0
        exact = const_cols[panel.hi[const_cols] == panel.lo[const_cols]]
        mean[exact] = panel.hi[exact] - (shift_v[exact] if isinstance(shift_v, np.ndarray) else shift_v)
        if m3 is not None and m4 is not None:
            m3[const_cols] = 0.0
            m4[const_cols] = 0.0
    return Moments(count=count, mean=mean, m2=m2, m3=m3, m4=m4, constant=constant)


RISK_FREE_UNITS = ("period", "annual")


def risk_free_per_period(
    risk_free: Any,
    unit: Any,
    *,
    periods_per_year: float,
    func: str,
    panel: Panel | None = None,
) -> float | np.ndarray:
    """The risk-free return per period, from a rate whose unit the caller must name.

    ``unit='period'``: ``risk_free`` is already per period. ``unit='annual'``: it is an annual
    rate, de-compounded to ``(1 + rf) ** (1 / periods_per_year) - 1`` per period (the convention
    pyfolio settled on in quantopian/pyfolio#213). A non-zero rate without a unit raises: the
    same 0.01 is 1 % a year or 1 % a day, and reading one as the other turned a Sharpe of 2.70
    into -34.99 in quantopian/empyrical#108. Rates are fractions in (-1, 1): 10.0 is almost
    surely 10 % typed as a percentage (ranaroussi/quantstats#71).

    With ``panel`` given, ``risk_free`` may also be one rate per period (array or Series of the
    returns' length; a Series must have the returns' index): returns an array of that length.
    """
    if unit is not None:
        check_choice(unit, param="risk_free_unit", func=func, choices=RISK_FREE_UNITS)
    scalar = isinstance(risk_free, numbers.Real) and not isinstance(risk_free, bool)
    if scalar and float(risk_free) == 0.0 and unit is None:
        return 0.0
    if unit is None:
        raise ValueError(
            f"The 'risk_free_unit' parameter of {func} must be one of {list(RISK_FREE_UNITS)} when "
            f"'risk_free' is not zero. Got None instead (risk_free={risk_free!r})."
        )
    if scalar:
        value: float | np.ndarray = check_real(risk_free, param="risk_free", func=func)
        bad = not -1.0 < float(value) < 1.0
    else:
        if panel is None or isinstance(risk_free, str | bytes | bool):
            raise ValueError(
                f"The 'risk_free' parameter of {func} must be a number. Got {risk_free!r} ({_type_name(risk_free)}) instead."
            )
        if (
            isinstance(risk_free, pd.Series)
            and panel.index is not None
            and not risk_free.index.equals(panel.index)
        ):
            raise ValueError(
                f"The 'risk_free' parameter of {func} must be a Series on the same index as 'returns' "
                f"({len(panel.index)} periods); its index differs. Align it first (e.g. risk_free.reindex(returns.index))."
            )
        try:
            arr = np.asarray(risk_free, dtype=float).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"The 'risk_free' parameter of {func} must be a number or one number per period. "
                f"Got {_type_name(risk_free)} instead."
            ) from exc
        if arr.shape[0] != panel.values.shape[0]:
            raise ValueError(
                f"The 'risk_free' parameter of {func} must have one rate per period ({panel.values.shape[0]}). "
                f"Got {arr.shape[0]} instead."
            )
        value = arr
        bad = not bool(np.all((arr > -1.0) & (arr < 1.0)))
    if bad:
        raise ValueError(
            f"The 'risk_free' parameter of {func} must be a rate as a fraction in (-1, 1), e.g. 0.05 for 5 %. "
            f"Got {risk_free!r} instead."
        )
    if unit == "annual":
        value = np.expm1(np.log1p(value) / periods_per_year)
        return float(value) if scalar else np.asarray(value, dtype=float)
    return value
