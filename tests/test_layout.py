"""The layout keeps its promises: no module of the station imports, through any chain, a module that imports it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import station

ROOT = Path(station.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_at_load(path: Path, modules: set[str]) -> set[str]:
    """The station modules ``path`` imports when it is loaded (imports inside functions run later, on use):
    ``from package import name`` imports the submodule ``name`` where there is one, else the package."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return found & modules


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    return {name: imports_at_load(path, set(paths)) - {name} for name, path in paths.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the chain of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current chain, 2: done
    chain: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        chain.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                return [*chain[chain.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        chain.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_checker_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_of_the_station_imports_itself_through_others() -> None:
    edges = graph()
    assert "station.cli.base" in edges["station.cli"]  # the graph sees imports, relative ones included
    assert cycle(edges) is None, " -> ".join(cycle(edges) or [])


SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|"
                 r"ALTER\s+TABLE|PRAGMA\s+\w+)\b", re.S)


def sql_outside_the_db_layer(root: Path) -> list[str]:
    """``file:line`` of every string literal holding SQL in modules outside station/db."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(root / "db"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_the_checker_finds_sql(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "devices.py").write_text('Q = "SELECT uci FROM devices"\n')
    (tmp_path / "pages.py").write_text('TEXT = "select a device"\nQ = "UPDATE devices SET state = ?"\n')
    assert sql_outside_the_db_layer(tmp_path) == [f"{tmp_path.name}/pages.py:2"]


def test_all_sql_lives_in_the_db_layer() -> None:
    assert sql_outside_the_db_layer(ROOT) == []
