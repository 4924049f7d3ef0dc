"""Errors that name what broke a contract; kept free of heavy imports.

:class:`DataValidationError` lives here (and is re-exported by :mod:`infra.loaders`) so that
:mod:`infra.cli`, which every command-line job imports, does not pull in pandas: the feedback
bridge and the other long-running services start in well under a second and keep their heap,
which the garbage collector walks, small.
"""

from __future__ import annotations

from typing import Any


class DataValidationError(ValueError):
    """Input data broke its contract. Attributes name the file, row, field and value.

    Examples
    --------
    >>> str(DataValidationError("field 'close' has an unparseable number 'abc'", file="x.csv", row=2))
    "x.csv, row 2: field 'close' has an unparseable number 'abc'"
    """

    def __init__(
        self, message: str, *, file: str, row: int | None = None, field: str | None = None, value: Any = None
    ) -> None:
        where = file if row is None else f"{file}, row {row}"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.row = row
        self.field = field
        self.value = value
