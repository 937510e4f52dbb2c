"""What a command prints goes through federation/output.py: results to stdout, progress and diagnostics through
`logging` to stderr. A bare print() (or print passed as a callback) anywhere else in the code that ships or the demo would bypass that split
(and `--json | jq` or a redirected result would get progress lines)."""
from __future__ import annotations

import ast
from pathlib import Path

from federation.config import APP_ROOT

PACKAGES = ("federation", "clients", "server", "dp_accounting", "devtools")
ALLOWED = {Path("federation/output.py")}


def bare_prints(root: Path, packages=PACKAGES) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if rel in ALLOWED or "data" in rel.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Name) and node.id == "print":   # a call, or print passed as a callback
                    found.append(f"{rel}:{node.lineno}")
    return found


def test_no_bare_print_outside_the_output_module():
    assert bare_prints(APP_ROOT) == []


def test_the_check_finds_a_bare_print(tmp_path):
    (tmp_path / "clients").mkdir()
    (tmp_path / "clients" / "x.py").write_text("def f(say=print):\n    console.print('fine')\n    print('not fine')\n")
    assert bare_prints(tmp_path, ("clients",)) == ["clients/x.py:1", "clients/x.py:3"]
