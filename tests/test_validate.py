"""infra.validate: one message format, exact bounds, and refusals of look-alike types."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.validate import check_choice, check_int, check_real, param_error

MESSAGE = re.compile(r"^The '(\w+)' parameter of (\w+) must be (.+)\. Got (.+) instead\.$")


def message(exc: pytest.ExceptionInfo[ValueError]) -> tuple[str, ...]:
    m = MESSAGE.match(str(exc.value))
    assert m is not None, str(exc.value)
    return m.groups()


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10), st.floats(-10, 10))
def test_check_real_accepts_exactly_the_finite_values_in_range(x: float, a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    inside = math.isfinite(x) and lo <= x <= hi
    if inside:
        assert check_real(x, param="x", func="f", minimum=lo, maximum=hi) == x
    else:
        with pytest.raises(ValueError) as exc:
            check_real(x, param="x", func="f", minimum=lo, maximum=hi)
        assert message(exc) == ("x", "f", f"a finite number in [{lo:g}, {hi:g}]", repr(x))


@given(st.integers(-1000, 1000), st.integers(-50, 50))
def test_check_int_bound_is_inclusive(n: int, k: int) -> None:
    if n >= k:
        assert check_int(n, param="n", func="g", minimum=k) == n
    else:
        with pytest.raises(ValueError) as exc:
            check_int(n, param="n", func="g", minimum=k)
        assert message(exc) == ("n", "g", f"an int >= {k}", str(n))


@pytest.mark.parametrize(
    ("call", "need", "got"),
    [
        (lambda: check_real(True, param="p", func="f"), "a finite number", "True"),
        (lambda: check_real("1.5", param="p", func="f"), "a finite number", "'1.5'"),
        (lambda: check_real(0.0, param="p", func="f", positive=True), "a finite number > 0", "0.0"),
        (lambda: check_real(-1, param="p", func="f", minimum=0), "a finite number >= 0", "-1"),
        (lambda: check_real(2.0, param="p", func="f", maximum=1), "a finite number <= 1", "2.0"),
        (lambda: check_real(0.0, param="p", func="f", positive=True, maximum=1), "a finite number in (0, 1]", "0.0"),
        (lambda: check_real(1.0, param="p", func="f", minimum=0, maximum=1, exclusive_max=True),
         "a finite number in [0, 1)", "1.0"),
        (lambda: check_int(2.0, param="p", func="f", minimum=1), "an int >= 1", "2.0"),
        (lambda: check_int(False, param="p", func="f", minimum=0), "an int >= 0", "False"),
        (lambda: check_int(251, param="p", func="f", minimum=1, maximum=250), "an int in [1, 250]", "251"),
        (lambda: check_choice("x", param="p", func="f", choices=("a", "b")), "one of ['a', 'b']", "'x'"),
        (lambda: check_choice(1.0, param="p", func="f", choices=(1, 2)), "one of [1, 2]", "1.0"),
        (lambda: check_choice(True, param="p", func="f", choices=(1, 2)), "one of [1, 2]", "True"),
    ],
)  # fmt: skip
def test_refusals_name_parameter_function_need_and_value(call, need: str, got: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as exc:
        call()
    assert message(exc) == ("p", "f", need, got)


def test_numpy_scalars_are_numbers_and_values_come_back_converted() -> None:
    assert check_real(np.float32(0.5), param="p", func="f") == 0.5
    assert type(check_real(np.int64(3), param="p", func="f")) is float
    n = check_int(np.int64(7), param="p", func="f", minimum=0)
    assert n == 7 and type(n) is int
    assert check_choice(np.str_("a"), param="p", func="f", choices=("a",)) == "a"
    with pytest.raises(ValueError):
        check_choice(np.array([1, 2]), param="p", func="f", choices=(1,))  # no element-wise truth


def test_param_error_for_relations() -> None:
    assert str(param_error("end", "f", "after 'start' (2024-01-01)", "2023")) == (
        "The 'end' parameter of f must be after 'start' (2024-01-01). Got '2023' instead."
    )


def test_metrics_core_uses_the_same_helpers() -> None:
    from execution.metrics import core

    assert core.check_real is check_real and core.check_int is check_int and core.check_choice is check_choice
