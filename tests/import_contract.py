"""The house's floors, read from the code: every import points down, no two modules form a circle.

The contract lives in ``pyproject.toml`` under ``[tool.floors]`` (see docs/architecture.md):

* ``packages`` gives each top-level package its floor (1 infra, 2 pure computation, 3 jobs and
  services, 4 the demo pipeline and the views);
* ``services`` lists the job and service modules of floor 3 that live beside pure modules in
  ``execution/``, ``ml/`` and ``research/`` (their commands stay where the README names them);
* ``forbidden`` lists package pairs that must never import each other in that direction
  (``execution`` never imports ``research``: the governor receives its sizing policy as an object).

Every ``import`` counts, including those inside functions: a lazy upward import is still an
upward arrow. The checker is plain :mod:`ast`, so it runs in a second and needs no install.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

FLOOR_NAMES = {1: "infra", 2: "pure computation", 3: "jobs and services", 4: "demo and views"}


@dataclass(frozen=True)
class Contract:
    packages: dict[str, int]
    services: frozenset[str] = frozenset()
    forbidden: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_pyproject(cls, path: Path) -> Contract:
        table = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["floors"]
        return cls(
            packages={str(k): int(v) for k, v in table["packages"].items()},
            services=frozenset(table.get("services", [])),
            forbidden=tuple((str(a), str(b)) for a, b in table.get("forbidden", [])),
        )

    def floor(self, module: str) -> int:
        if module in self.services or any(module.startswith(s + ".") for s in self.services):
            return 3
        return self.packages[module.split(".")[0]]


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    lines: dict[tuple[str, str], int] = field(default_factory=dict)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_graph(root: Path, packages: Iterable[str]) -> Graph:
    """Every import between modules of ``packages`` under ``root`` (absolute and relative)."""
    modules: dict[str, Path] = {}
    for pkg in packages:
        base = root / pkg
        if base.is_dir():
            for p in sorted(base.rglob("*.py")):
                modules[_module_name(root, p)] = p
    graph = Graph(modules)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base_mod = node.module or ""
                if node.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base_mod = ".".join([*anchor, base_mod] if base_mod else anchor)
                targets = [f"{base_mod}.{a.name}" for a in node.names] + [base_mod]
            for t in targets:
                dst = resolve(t)
                if dst and dst != mod and not mod.startswith(dst + "."):
                    graph.edges[mod].add(dst)
                    graph.lines.setdefault((mod, dst), getattr(node, "lineno", 0))
    return graph


def upward_imports(graph: Graph, contract: Contract) -> list[str]:
    """One line per import that points up a floor or crosses a forbidden pair."""
    out = []
    for src in sorted(graph.edges):
        for dst in sorted(graph.edges[src]):
            fs, fd = contract.floor(src), contract.floor(dst)
            where = f"{graph.modules[src]}:{graph.lines[(src, dst)]}"
            if fd > fs:
                out.append(
                    f"{where}: {src} (floor {fs}, {FLOOR_NAMES[fs]}) imports {dst} "
                    f"(floor {fd}, {FLOOR_NAMES[fd]})"
                )
            for a, b in contract.forbidden:
                if src.split(".")[0] == a and dst.split(".")[0] == b:
                    out.append(f"{where}: {src} imports {dst}, but {a} must never import {b}")
    return out


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter
                counter += 1
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(sorted(graph.edges.get(nxt, ())))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    return sorted(found)
