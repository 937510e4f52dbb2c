"""The code hash of a PULSE-TWIN app bundle: what a node approves before it runs anything.

Flower sends each SuperNode whatever app bundle (FAB) the SuperLink holds, and checks no signature of
its own. So the coordinator states the code hash of the bundle in its run proposal, the node's staff
approve that hash, and the node recomputes it from the unpacked bundle it is about to run.

The hash covers only files that `flwr run` packs unchanged (Python, TOML, YAML, JSON under the code
and config folders), and `pyproject.toml` by its parsed content, because Flower rewrites that file
when it builds the bundle. Computed from the repository or from the unpacked bundle, it is the same.

An installed wheel has the same code in site-packages and carries pyproject.toml and configs/ as package
data (`federation/data/`, copied there by setup.py at build time). `app_dir` lays those files out as a
checkout in a private temporary directory: the code hash and the bundle `flwr run` builds from it are then
those of a checkout of the same version, so a node installed from the wheel admits runs launched from a
checkout and the other way round.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import tomllib
import zipfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Mapping

from federation.config import APP_ROOT, PYPROJECT, SHIPPED_APP, installed
from federation.errors import ConfigError

CODE_DIRS: tuple[str, ...] = ("federation", "clients", "server", "dp_accounting", "configs")
CODE_SUFFIXES: frozenset[str] = frozenset({".py", ".toml", ".yaml", ".yml", ".json", ".jsonl"})
SKIP_DIRS: frozenset[str] = frozenset({"__pycache__", ".pytest_cache", ".hypothesis", ".venv", "data", "runs"})
CONFIG_DIR = "configs"


def _covered(rel: PurePosixPath) -> bool:
    """Whether the code hash covers the file at this relative path."""
    if len(rel.parts) < 2 or rel.parts[0] not in CODE_DIRS or any(part in SKIP_DIRS for part in rel.parts):
        return False
    # Flower leaves test modules out of bundles; they are no part of the code a node runs.
    return rel.suffix in CODE_SUFFIXES and not (rel.name.startswith("test_") or rel.stem.endswith("_test"))


def bundle_files(app_root: Path, folders: Iterable[str] = CODE_DIRS) -> list[str]:
    """Relative POSIX paths of the files the code hash covers (in `folders`), sorted."""
    root = Path(app_root)
    paths: list[str] = []
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if path.is_file() and _covered(rel):
                paths.append(rel.as_posix())
    return sorted(paths)


def code_hash(app_root: Path) -> str:
    """SHA-256 over the sorted relative paths and bytes of the app's code and config files."""
    root = Path(app_root)
    if not (root / PYPROJECT).is_file():
        raise ConfigError(f"{root}: not an app root (no {PYPROJECT})")
    entries = [(rel, (root / rel).read_bytes()) for rel in bundle_files(root)]
    return _digest(_pyproject_bytes(root / PYPROJECT), entries)


def fab_code_hash(fab: bytes, source: str = "the run's app bundle") -> str:
    """The code hash of a Flower app bundle (a zip), read in memory: nothing of it is unpacked or run.

    The node computes this with its own installed code before anything of the bundle may run."""
    try:
        with zipfile.ZipFile(io.BytesIO(fab)) as archive:
            files = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ConfigError(f"{source}: not a readable app bundle ({err})") from None
    if PYPROJECT not in files:
        raise ConfigError(f"{source}: has no {PYPROJECT}")
    try:
        config = tomllib.loads(files[PYPROJECT].decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{source}: its {PYPROJECT} is not valid TOML ({err})") from None
    entries = [(name, data) for name, data in files.items() if _covered(PurePosixPath(name))]
    return _digest(_canonical_pyproject(config), entries)


def _digest(pyproject: bytes, entries: Iterable[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256(b"pulse-twin code hash v1\n")
    for rel, data in sorted([(PYPROJECT, pyproject), *entries]):
        name = rel.encode("utf-8")
        # Length prefixes make the encoding unambiguous: no two file sets give the same byte stream.
        digest.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _pyproject_bytes(path: Path) -> bytes:
    """pyproject.toml as canonical JSON, without the connection settings Flower strips from bundles."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    return _canonical_pyproject(config)


def _canonical_pyproject(config: Mapping) -> bytes:
    config = json.loads(json.dumps(config, default=str))
    config.get("tool", {}).get("flwr", {}).pop("federations", None)
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


@contextmanager
def app_dir() -> Iterator[Path]:
    """The app root of the code this process runs, laid out as a checkout: the checkout (or unpacked bundle)
    itself, or for an installed wheel a private temporary copy of its packages' code, pyproject.toml and
    configs/, removed on exit."""
    if not installed():
        yield APP_ROOT
        return
    if not (SHIPPED_APP / PYPROJECT).is_file():
        raise ConfigError(f"{SHIPPED_APP}: this installed PULSE-TWIN carries no {PYPROJECT} (a wheel built "
                          "without setup.py's build hook); reinstall it from a wheel built from a checkout")
    with tempfile.TemporaryDirectory(prefix="pulse-twin-app-") as tmp:
        stage = Path(tmp)
        code = [f for f in CODE_DIRS if f != CONFIG_DIR]
        # site-packages may hold another distribution's configs/: the wheel's own come from its package data.
        copies = [(APP_ROOT, rel) for rel in bundle_files(APP_ROOT, code)]
        copies += [(SHIPPED_APP, rel) for rel in [PYPROJECT, *bundle_files(SHIPPED_APP, [CONFIG_DIR])]]
        for base, rel in copies:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base / rel, stage / rel)
        yield stage


@lru_cache(maxsize=1)
def running_code_hash() -> str:
    """Hash of the app code this process is running (the node's installed PULSE-TWIN), for the approval check."""
    with app_dir() as root:
        return code_hash(root)
