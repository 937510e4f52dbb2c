"""The import graph of the project's packages: no cycles, and imports that flow one way.

Layers, bottom up: `dp_accounting` (the ledger; imports no other package of the project), `federation`
(what node and coordinator share), then `clients` (the node), which never imports `server` (the coordinator:
it may read what a node writes, e.g. for the report of a run on one machine); the `pulse-twin` CLI (`federation.cli`, `federation.commands`) sits on top of all of
them. Development tools (`devtools`, `benchmarks`) sit outside the bundle that sites approve: only the CLI
and other development tools may import them. Every import counts, also one made inside a function; only
imports under `if TYPE_CHECKING:` (never run) do not.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dp_accounting", "federation", "clients", "server", "devtools", "benchmarks")
DEV_TOOLS = ("devtools", "benchmarks")
CLI = ("federation.cli", "federation.commands")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (its longest dotted prefix that is a module)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _runtime_nodes(tree: ast.AST):
    """Every node of the tree except those under `if TYPE_CHECKING:` (imports for type checkers only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            children = [node.test, *node.orelse]
        todo.extend(children)


def import_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (relative imports resolved)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from package import submodule` imports the submodule; `from package import name` the package.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    edges[name].add(resolved)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def _is_cli(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in CLI)


def layering_violations(edges: dict[str, set[str]]) -> list[str]:
    """Each import that goes against the layers, as 'importer -> imported (rule)'."""
    bad: list[str] = []
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            a, b = _top(src), _top(dst)
            if a == b:
                continue
            rule = None
            if a == "dp_accounting":
                rule = "dp_accounting imports no other package of the project"
            elif b in DEV_TOOLS and a not in DEV_TOOLS and not _is_cli(src):
                rule = "only the CLI and development tools import development tools"
            elif a == "federation" and b in ("clients", "server") and not _is_cli(src):
                rule = "shared code (federation) does not import the node or the coordinator"
            elif a == "clients" and b == "server":
                rule = "the node does not import the coordinator"
            if rule:
                bad.append(f"{src} -> {dst} ({rule})")
    return bad


def test_the_project_has_no_import_cycle():
    found = cycles(import_edges(project_modules()))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_imports_flow_one_way():
    bad = layering_violations(import_edges(project_modules()))
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    found = {}
    for package in PACKAGES:
        for path in sorted((tmp_path / package).rglob("*.py")):
            parts = list(path.relative_to(tmp_path).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def test_the_check_finds_a_cycle_made_inside_a_function(tmp_path):
    modules = _tree(tmp_path, {
        "dp_accounting/__init__.py": "",
        "dp_accounting/ledger.py": "from dp_accounting.budget import project\n",
        "dp_accounting/budget.py": "def project():\n    from dp_accounting import ledger\n",
    })
    assert cycles(import_edges(modules)) == [["dp_accounting.budget", "dp_accounting.ledger"]]


@pytest.mark.parametrize("src, text, rule", [
    ("dp_accounting/ledger.py", "from federation.errors import ConfigError\n", "dp_accounting imports no other"),
    ("federation/proposal.py", "from clients.site_policy import UNITS\n", "shared code (federation)"),
    ("server/app.py", "from devtools.yardstick import run\n", "only the CLI and development tools"),
    ("clients/node.py", "from server import runs\n", "the node does not import the coordinator"),
])
def test_the_check_finds_an_import_against_the_layers(tmp_path, src, text, rule):
    files = {f"{p}/__init__.py": "" for p in PACKAGES}
    files.update({"federation/errors.py": "", "clients/site_policy.py": "", "devtools/yardstick.py": "",
                  "server/runs.py": "", src: text})
    bad = layering_violations(import_edges(_tree(tmp_path, files)))
    assert len(bad) == 1 and rule in bad[0], bad


def test_an_import_for_type_checkers_only_is_no_cycle(tmp_path):
    modules = _tree(tmp_path, {
        "server/__init__.py": "",
        "server/build.py": "def render():\n    from server import html\n",
        "server/html.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from server.build import Report\n",
    })
    assert cycles(import_edges(modules)) == []
    modules["server.html"].write_text("from server.build import Report\n")
    assert cycles(import_edges(modules)) == [["server.build", "server.html"]]


def test_the_cli_may_import_every_layer(tmp_path):
    files = {f"{p}/__init__.py": "" for p in PACKAGES}
    files.update({"federation/commands/__init__.py": "", "devtools/launcher.py": "", "server/runs.py": "",
                  "federation/commands/federate.py": "from devtools.launcher import X\nfrom server import runs\n"})
    assert layering_violations(import_edges(_tree(tmp_path, files))) == []
