"""Parameter checks shared by every layer, with one message format.

A bad argument raises ``ValueError`` naming the parameter, the function, what it must be and the
value given, in the scikit-learn style::

    The 'window' parameter of rolling_sharpe must be an int >= 2. Got 0 instead.

Each helper returns the value converted (``float``/``int``/``str``), so a call site reads
``window = check_int(window, param="window", func="rolling_sharpe", minimum=2)``.
Booleans are refused where a number is expected (``True`` is an ``int`` in Python but never a
meaningful window or rate), and so are strings that merely look like numbers.

Examples
--------
>>> check_real(0.25, param="p", func="f", minimum=0.0, maximum=1.0)
0.25
>>> check_int(3, param="n", func="f", minimum=1)
3
>>> check_choice("mean", param="how", func="f", choices=("mean", "median"))
'mean'
>>> check_real(float("nan"), param="p", func="f")
Traceback (most recent call last):
...
ValueError: The 'p' parameter of f must be a finite number. Got nan instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["check_choice", "check_int", "check_real", "param_error"]


def param_error(param: str, func: str, need: str, value: Any) -> ValueError:
    """The error every check raises: ``The 'param' parameter of func must be need. Got value instead.``

    For a condition no helper covers (a relation between two parameters, a shape), build the
    message with this so every refusal reads alike.

    Examples
    --------
    >>> str(param_error("lo", "clip", "<= hi (3)", 5))
    "The 'lo' parameter of clip must be <= hi (3). Got 5 instead."
    """
    return ValueError(f"The '{param}' parameter of {func} must be {need}. Got {value!r} instead.")


def _fmt(x: float) -> str:
    return f"{x:g}"


def _real_need(
    *,
    positive: bool,
    minimum: float | None,
    maximum: float | None,
    exclusive_max: bool,
) -> str:
    if positive and maximum is None:
        return "a finite number > 0"
    lo = "(0" if positive else (f"[{_fmt(minimum)}" if minimum is not None else None)
    hi = None if maximum is None else (f"{_fmt(maximum)})" if exclusive_max else f"{_fmt(maximum)}]")
    if lo is not None and hi is not None:
        return f"a finite number in {lo}, {hi}"
    if lo is not None:
        return f"a finite number >= {_fmt(minimum)}" if minimum is not None else "a finite number > 0"
    if hi is not None:
        return f"a finite number {'<' if exclusive_max else '<='} {_fmt(maximum)}"  # type: ignore[arg-type]
    return "a finite number"


def check_real(
    value: Any,
    *,
    param: str,
    func: str,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_max: bool = False,
) -> float:
    """A finite real number (not a bool or a string), returned as ``float``.

    ``positive`` asks for ``> 0``; ``minimum``/``maximum`` for ``>=``/``<=`` bounds (``<`` with
    ``exclusive_max``). NaN and infinities are always refused.

    Examples
    --------
    >>> check_real(2, param="x", func="f", positive=True)
    2.0
    >>> check_real(1.0, param="x", func="f", minimum=0, maximum=1, exclusive_max=True)
    Traceback (most recent call last):
    ...
    ValueError: The 'x' parameter of f must be a finite number in [0, 1). Got 1.0 instead.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        x = float(value)
        if positive and not x > 0:
            ok = False
        if minimum is not None and not x >= minimum:
            ok = False
        if maximum is not None and not (x < maximum if exclusive_max else x <= maximum):
            ok = False
    if not ok:
        need = _real_need(positive=positive, minimum=minimum, maximum=maximum, exclusive_max=exclusive_max)
        raise param_error(param, func, need, value)
    return float(value)


def check_int(value: Any, *, param: str, func: str, minimum: int, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float) in ``[minimum, maximum]``, returned as ``int``.

    Examples
    --------
    >>> check_int(True, param="n", func="f", minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: The 'n' parameter of f must be an int >= 0. Got True instead.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and (int(value) < minimum or (maximum is not None and int(value) > maximum)):
        ok = False
    if not ok:
        need = f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum}]"
        raise param_error(param, func, need, value)
    return int(value)


def check_choice(value: T, *, param: str, func: str, choices: Iterable[T]) -> T:
    """``value`` when it is one of ``choices`` (equal and of the choice's type).

    Examples
    --------
    >>> check_choice("p99", param="q", func="f", choices=("p50", "p95"))
    Traceback (most recent call last):
    ...
    ValueError: The 'q' parameter of f must be one of ['p50', 'p95']. Got 'p99' instead.
    """
    options = list(choices)
    if not any(_same(value, c) for c in options):
        raise param_error(param, func, f"one of {options}", value)
    return value


def _same(value: Any, choice: Any) -> bool:
    """``value == choice`` of the same kind: ``1.0`` is not the choice ``1``, ``True`` not ``1``."""
    if not isinstance(value, type(choice)) or isinstance(value, bool) != isinstance(choice, bool):
        return False
    try:
        return bool(value == choice)
    except (TypeError, ValueError):  # an array compares element-wise
        return False
