"""Paths a contract names: always files inside the node directory.

A contract is YAML a transfer city writes; its table paths must never reach another node's raw files or
anything else on the machine. At contract check a path must be relative and free of `..`
(`check_relative`); at build time it must still resolve inside the node directory once symlinks are
followed, and name a file, not a directory (`node_file`).
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from federation.errors import ContractError

_DRIVE = re.compile(r"^[A-Za-z]:")


def check_relative(text: Any, where: str, fail: Any) -> str:
    """`text` as a path relative to the node directory, or `fail(...)` naming the rule (rule: node_dir_paths)."""
    value = str(text).strip()
    if not value:
        raise fail(f"{where}: an empty path; give a file under the node directory, e.g. raw/export.csv")
    windows = PureWindowsPath(value)
    if PurePosixPath(value).is_absolute() or windows.is_absolute() or _DRIVE.match(value) or value.startswith("\\"):
        raise fail(f"{where}: {value!r} is an absolute path; a contract names files relative to the node directory "
                   "(rule: node_dir_paths), e.g. raw/export.csv")
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise fail(f"{where}: {value!r} climbs out with '..'; a contract names files inside the node directory "
                   "only (rule: node_dir_paths)")
    return value


def node_file(node_dir: Path, relative: str, what: str) -> Path:
    """The existing file `relative` under `node_dir`, after following symlinks; one ContractError otherwise."""
    base = Path(node_dir).resolve()
    path = Path(node_dir) / relative
    check_relative(relative, f"{path} ({what})", ContractError)
    resolved = path.resolve()
    if not resolved.is_relative_to(base):
        raise ContractError(f"{path} ({what}): resolves to {resolved}, outside the node directory {base} (a symlink "
                            "out of it?); a node reads only files inside its own directory (rule: node_dir_paths)")
    if resolved.is_dir():
        raise ContractError(f"{path} ({what}): is a directory, not a file; name the export file itself")
    if not resolved.is_file():
        raise ContractError(f"{path}: file not found ({what})")
    return path
