"""Every environment variable is read through ``infra.settings`` (issue 21 item 6).

The test parses every module of the platform's packages and fails on any ``os.environ``,
``os.getenv``, ``os.putenv`` or ``from os import environ/getenv`` outside ``infra/settings.py``,
naming file and line. Tests and benchmarks build child-process environments and are out of scope.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("infra", "execution", "ml", "research", "scripts", "dashboard", "sim", "deploy")
ENV_NAMES = {"environ", "getenv", "putenv", "environb", "getenvb", "unsetenv"}

ALLOWED = {
    # Ray's local workers inherit this process's environment; the sweep puts the repo on their
    # PYTHONPATH so trial functions can import the project (a write for child processes, not a
    # configuration read, and Ray offers no other way for a local cluster without a runtime-env agent).
    "research/rl_sizer/sweep.py",
    "infra/settings.py",
}


def env_reads(source: str) -> list[int]:
    """Line numbers of every access to the process environment in ``source``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in ENV_NAMES for a in node.names)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_detector_finds_every_form() -> None:
    src = "import os\nos.environ['A']\nx = os.getenv('B')\nfrom os import environ\nos.path.join('a')\n"
    assert env_reads(src) == [2, 3, 4]


def test_no_environment_reads_outside_settings() -> None:
    offenders = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED:
                continue
            offenders += [f"{rel}:{n}" for n in env_reads(path.read_text(encoding="utf-8"))]
    assert offenders == [], (
        "read environment variables through infra.settings.Settings (add a field + [VAR] docstring): "
        + ", ".join(offenders)
    )


def test_allow_list_entries_still_need_it() -> None:
    """An allow-listed file that no longer touches the environment should leave the list."""
    for rel in ALLOWED:
        assert env_reads((ROOT / rel).read_text(encoding="utf-8")), rel
