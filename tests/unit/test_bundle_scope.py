"""What the code hash a node approves covers: the app's code and configuration, not the development tools."""
from __future__ import annotations

import shutil
from pathlib import Path

from federation import bundle, config
from federation.bundle import bundle_files, code_hash

ROOT = Path(__file__).resolve().parents[2]


def _app_copy(tmp_path: Path) -> Path:
    """The app as a checkout holds it: code and configuration folders, development tools, pyproject."""
    dest = tmp_path / "app"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("federation", "clients", "server", "dp_accounting", "configs", "devtools", "benchmarks"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_editing_the_synthetic_generator_or_its_profiles_leaves_the_code_hash_unchanged(tmp_path):
    app = _app_copy(tmp_path)
    before = code_hash(app)
    _append(app / "devtools" / "synthetic" / "generator.py", "\n# a tweak of the generator\n")
    _append(app / "devtools" / "synthetic" / "profiles" / "heerlen.yaml", "\n# a tweak of a profile\n")
    _append(app / "devtools" / "yardstick.py", "\n# a tweak of the yardstick\n")
    _append(app / "benchmarks" / "common.py", "\n# a tweak of a benchmark\n")
    assert code_hash(app) == before
    assert not [f for f in bundle_files(app) if f.startswith(("devtools/", "benchmarks/"))]


def test_editing_node_code_or_configuration_changes_the_code_hash(tmp_path):
    app = _app_copy(tmp_path)
    before = code_hash(app)
    _append(app / "clients" / "egress" / "guard.py", "\n# a change in the egress guard\n")
    after_code = code_hash(app)
    assert after_code != before
    _append(app / "configs" / "dp" / "default.yaml", "\n# a change of the DP defaults\n")
    assert code_hash(app) != after_code


def test_an_installed_wheel_gives_the_code_hash_of_its_checkout(tmp_path, monkeypatch):
    """The wheel's layout (packages in site-packages; pyproject.toml and configs/ copied by setup.py into
    federation/data/): configs are found there, and the staged app has the checkout's code hash."""
    site = tmp_path / "site-packages"
    shipped = site / "federation" / "data"
    for rel in bundle_files(ROOT):
        dest = shipped / rel if rel.startswith("configs/") else site / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest)
    shutil.copy(ROOT / "pyproject.toml", shipped / "pyproject.toml")
    (site / "configs").mkdir()
    (site / "configs" / "other.yaml").write_text("another distribution's: 1\n")   # not the wheel's
    monkeypatch.delenv("PULSE_TWIN_CONFIGS", raising=False)
    monkeypatch.setattr(config, "APP_ROOT", site)
    monkeypatch.setattr(config, "SHIPPED_APP", shipped)
    monkeypatch.setattr(bundle, "APP_ROOT", site)
    monkeypatch.setattr(bundle, "SHIPPED_APP", shipped)
    monkeypatch.setattr(bundle, "installed", config.installed)

    assert config.installed() and config.configs_dir() == shipped / "configs"
    with bundle.app_dir() as staged:
        assert staged != site and (staged / "pyproject.toml").is_file()
        assert bundle_files(staged) == bundle_files(ROOT)
        assert code_hash(staged) == code_hash(ROOT)
    assert not staged.exists()
    monkeypatch.setenv("PULSE_TWIN_CONFIGS", str(ROOT / "configs"))
    assert config.configs_dir() == ROOT / "configs"
