"""Hydra configuration: where `configs/` is, and composing it with command-line overrides.

`configs/` sits at the root of the app (the repository, or the unpacked Flower app bundle a SuperNode
runs), next to the import packages; `PULSE_TWIN_CONFIGS` points elsewhere when a node keeps its own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf

from federation.errors import ConfigError

APP_ROOT = Path(__file__).resolve().parent.parent


def configs_dir() -> Path:
    """The configuration root: `$PULSE_TWIN_CONFIGS` or `<app root>/configs`."""
    path = Path(os.environ.get("PULSE_TWIN_CONFIGS", APP_ROOT / "configs"))
    if not path.is_dir():
        raise ConfigError(f"configuration directory {path} does not exist (set PULSE_TWIN_CONFIGS)")
    return path


def compose(config_name: str, overrides: Sequence[str] = (), group: str | None = None) -> DictConfig:
    """Compose `configs/[group/]config_name.yaml` with Hydra-style overrides (`key=value`, `group=option`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    root = configs_dir() / group if group else configs_dir()
    if not (root / f"{config_name}.yaml").is_file():
        choices = sorted(p.stem for p in root.glob("*.yaml")) if root.is_dir() else []
        raise ConfigError(
            f"no configuration '{config_name}' in {root}" + (f" (choose from: {', '.join(choices)})" if choices else "")
        )
    try:
        with initialize_config_dir(config_dir=str(root), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
            values = [o for o in overrides if _is_value(o, root)]
            if values:
                defaults = hydra_compose(config_name=config_name, overrides=[o for o in overrides if o not in values])
                _check_types(values, defaults, cfg)
            return cfg
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"{root / (config_name + '.yaml')}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{root / (config_name + '.yaml')}: not valid YAML{at}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{root / (config_name + '.yaml')}: not a UTF-8 text file") from None


_KINDS = {bool: "true or false", int: "a whole number", float: "a number"}


def _is_value(override: str, root: Path) -> bool:
    """A `key=value` override of a setting (not a group choice such as `federation=cities`, nor `~`/`+`)."""
    key = override.split("=", 1)[0]
    return "=" in override and not key.startswith(("~", "+")) and not (root / key).is_dir()


def _check_types(values: Sequence[str], defaults: Any, cfg: Any) -> None:
    """A value override must have the type of the setting it replaces: `train.epochs=two` is one clear error
    naming the key, not a TypeError deep inside training."""
    for override in values:
        key = override.split("=", 1)[0]
        before, after = OmegaConf.select(defaults, key, default=None), OmegaConf.select(cfg, key, default=None)
        kind = type(before)
        if kind not in _KINDS or after is None:
            continue
        fits = (isinstance(after, bool) if kind is bool else
                isinstance(after, int) and not isinstance(after, bool) if kind is int else
                isinstance(after, (int, float)) and not isinstance(after, bool))
        if not fits:
            raise ConfigError(f"{key}: '{override.split('=', 1)[1]}' is not {_KINDS[kind]} (the configured value is "
                              f"{before!r})")


def load_yaml(path: Path) -> dict:
    """Read one YAML mapping, with one clear error for a missing or malformed file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def to_container(cfg: DictConfig) -> dict:
    """Plain dict of a composed config, interpolations resolved."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
