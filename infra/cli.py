"""Entry-point wrapper for the command-line jobs: bad user input is one line, not a traceback.

A :class:`~infra.errors.DataValidationError` (a data file broke its contract) or a
:class:`~infra.settings.SettingsError` (an environment variable holds an unusable value) already
names the file, row, field or variable and the value; the wrapper prints that message as
``<prog>: <message>`` on stderr and exits 2. A production-safety refusal
(:class:`~infra.safety.ProductionWriteRefused`, :class:`~infra.safety.EnvironmentRefused`) is one
line too and exits 3, so cron and systemd see a refusal as a failure. Anything else is a bug and
keeps its traceback.

While ``main`` runs, ``sys.argv[0]`` is ``prog`` (``python -m pkg.module``): an
``argparse.ArgumentParser`` built without ``prog`` takes its name from there, so every
``--help`` and usage error shows the command a user types, not ``drift_service.py``.

Examples
--------
>>> from infra.errors import DataValidationError
>>> def main() -> int:
...     raise DataValidationError("field 'close' has an unparseable number 'abc'", file="x.csv", row=2)
>>> run_cli(main, prog="demo")  # doctest: +SKIP
demo: x.csv, row 2: field 'close' has an unparseable number 'abc'
2
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from infra.errors import DataValidationError
from infra.safety import EnvironmentRefused, ProductionWriteRefused
from infra.settings import SettingsError

USER_INPUT_ERRORS: tuple[type[Exception], ...] = (DataValidationError, SettingsError)
REFUSALS: tuple[type[Exception], ...] = (ProductionWriteRefused, EnvironmentRefused)
EXIT_USER_INPUT = 2
EXIT_REFUSED = 3


def run_cli(main: Callable[[], int | None], *, prog: str) -> int:
    """Call ``main()``; return its exit code, 2 after a user-input error, 3 after a refusal."""
    argv0 = sys.argv[0] if sys.argv else ""
    if sys.argv:
        sys.argv[0] = prog  # argparse's default prog is basename(sys.argv[0]); prog has no "/"
    try:
        code = main()
    except USER_INPUT_ERRORS as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USER_INPUT
    except REFUSALS as exc:
        print(f"{prog}: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        if sys.argv:
            sys.argv[0] = argv0
    return 0 if code is None else int(code)
