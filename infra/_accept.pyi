"""Type stub of the optional C extension ``infra._accept`` (see ``infra/_accept.c``)."""

from typing import Any

K_NUM: int
K_STR: int
K_ENUM: int
K_VECTOR: int
K_TS: int
K_EQ: int
K_CALL: int

class Acceptor:
    def __init__(
        self,
        fields: tuple[tuple[str, bool, int, Any, Any], ...],
        when: tuple[str, str, str] | None = None,
    ) -> None: ...
    def __call__(self, event: object, /) -> bool: ...
