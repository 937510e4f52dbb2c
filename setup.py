"""Build hook: the wheel carries the app's `pyproject.toml` and `configs/` (all metadata stays in pyproject.toml).

An installed wheel has no checkout around its packages, but a node computes the code hash over the parsed
pyproject.toml and configs/, and `flwr run` builds the app bundle from them. So the build copies both, byte
for byte, into the package data folder `federation/data/` (see `federation.bundle.app_dir`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = Path("federation") / "data"   # federation.config.SHIPPED_APP, relative to the packages


class BuildPyWithApp(build_py):
    """`build_py`, then pyproject.toml and every configs/ YAML file into `federation/data/` of the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:   # an editable install reads the checkout itself
            return
        configs = sorted(p for p in (ROOT / "configs").rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not configs:
            raise RuntimeError(f"{ROOT / 'configs'}: no YAML files; build the wheel from a checkout")
        target = Path(self.build_lib) / SHIPPED
        for source in [ROOT / "pyproject.toml", *configs]:
            dest = target / source.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildPyWithApp})
