"""A module over 400 lines needs a reason (issue 21 item 2): a split by concept, or one sentence
"Why this file is long" in its docstring saying why it is one concept."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("infra", "execution", "ml", "research", "scripts", "sim", "deploy", "dashboard")
LIMIT = 400
MARKER = "Why this file is long"

PENDING: set[str] = set()
"""Modules exempted while other work reshapes them (none now: every long module is split or explained)."""


def long_without_reason(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    out = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") > LIMIT and MARKER not in text:
                out.append(f"{path.relative_to(root).as_posix()} ({text.count(chr(10))} lines)")
    return out


def test_the_check_flags_a_long_module_until_it_gives_a_reason(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "short.py").write_text("x = 1\n" * LIMIT)
    (pkg / "long.py").write_text('"""Doc."""\n' + "x = 1\n" * LIMIT)
    assert long_without_reason(tmp_path, ("pkg",)) == ["pkg/long.py (401 lines)"]
    (pkg / "long.py").write_text(f'"""Doc.\n\n{MARKER}: one concept.\n"""\n' + "x = 1\n" * LIMIT)
    assert long_without_reason(tmp_path, ("pkg",)) == []


def test_every_long_module_is_split_or_explained() -> None:
    offenders = [f for f in long_without_reason() if f.split(" ")[0] not in PENDING]
    assert offenders == [], f"split by concept or add a '{MARKER}' sentence to the docstring: {offenders}"
