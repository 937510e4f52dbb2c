"""README's layout table matches the tree: every folder of the project is in it, and every file or folder a
row names exists in that row's folder."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOP = ("federation", "clients", "server", "dp_accounting", "configs", "devtools", "benchmarks", "tests", "docs")


def layout_rows(readme: str) -> dict[str, str]:
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `([a-z_]+)/` \| (.*)", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def named_paths(folder: str, text: str) -> list[Path]:
    """The files and sub-folders a row names in backticks (`x.py`, `sub/`, `clients/<partner>/` left out)."""
    names = re.findall(r"`([A-Za-z_./]+)`", text)
    out = []
    for name in names:
        if "<" in name or name.startswith(("pulse-twin", "python")) or "." not in name and not name.endswith("/"):
            continue
        top = name.split("/", 1)[0]
        if top in TOP and top != folder:   # a path in another top folder, e.g. `configs/contract/`
            out.append(REPO / name.rstrip("/"))
            continue
        rel = name[len(folder) + 1:] if name.startswith(folder + "/") else name
        out.append(REPO / folder / rel.rstrip("/"))
    return out


def test_every_folder_of_the_project_has_a_row_and_every_row_a_folder():
    rows = layout_rows((REPO / "README.md").read_text())
    assert set(rows) == set(TOP)
    assert all((REPO / folder).is_dir() for folder in rows)


def test_every_file_a_row_names_exists():
    rows = layout_rows((REPO / "README.md").read_text())
    missing = [str(p.relative_to(REPO)) for folder, text in rows.items() for p in named_paths(folder, text)
               if not p.exists()]
    assert not missing, f"README's layout table names what the tree does not have: {missing}"


def test_the_check_notices_a_file_that_is_gone():
    assert not named_paths("server", "the yardstick (`yardstick.py`)")[0].exists()
