"""The import-layer contract (``[tool.floors]`` in pyproject.toml) holds for the whole tree."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.import_contract import Contract, circles, read_graph, upward_imports

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = Contract.from_pyproject(ROOT / "pyproject.toml")


def test_every_import_points_down() -> None:
    graph = read_graph(ROOT, CONTRACT.packages)
    assert len(graph.modules) > 80  # the checker really read the tree
    assert upward_imports(graph, CONTRACT) == []


def test_no_import_circles() -> None:
    assert circles(read_graph(ROOT, CONTRACT.packages)) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def test_the_checker_catches_an_upward_import_even_inside_a_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "infra/__init__.py": "",
            "infra/store.py": "def f():\n    from scripts.demo import DemoContext\n",
            "execution/__init__.py": "",
            "execution/bridge.py": "from infra import store\nfrom research.sizer import S\n",
            "research/__init__.py": "",
            "research/sizer.py": "S = 1\n",
            "scripts/__init__.py": "",
            "scripts/demo.py": "from execution.bridge import *\nDemoContext = 1\n",
        },
    )
    contract = Contract(
        packages={"infra": 1, "execution": 2, "research": 2, "scripts": 4},
        forbidden=(("execution", "research"),),
    )
    problems = upward_imports(read_graph(root, contract.packages), contract)
    assert problems == [
        f"{root / 'execution/bridge.py'}:2: execution.bridge imports research.sizer, but execution must never "
        "import research",
        f"{root / 'infra/store.py'}:2: infra.store (floor 1, infra) imports scripts.demo (floor 4, demo and views)",
    ]


def test_the_checker_finds_circles_and_relative_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ml/__init__.py": "",
            "ml/a.py": "from . import b\n",
            "ml/b.py": "from .c import x\n",
            "ml/c.py": "from ml.a import y\nx = 1\n",
            "ml/d.py": "import ml.a\n",
        },
    )
    assert circles(read_graph(root, ["ml"])) == [["ml.a", "ml.b", "ml.c"]]


def test_services_sit_on_floor_three() -> None:
    assert CONTRACT.floor("execution.feedback_bridge") == 3
    assert CONTRACT.floor("execution.reward_calculator") == 2
    assert CONTRACT.floor("infra.settings") == 1
    assert CONTRACT.floor("dashboard.app") == 4
