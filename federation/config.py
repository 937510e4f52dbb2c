"""Hydra configuration: where `configs/` is, and composing it with command-line overrides.

`configs/` sits at the root of the app (the repository, or the unpacked Flower app bundle a SuperNode
runs), next to the import packages. An installed wheel has no app root around its packages: it carries
`configs/` and `pyproject.toml` as package data in `federation/data/` (copied there by setup.py when the
wheel is built). `PULSE_TWIN_CONFIGS` points elsewhere when a node keeps its own.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from federation.errors import ConfigError

APP_ROOT = Path(__file__).resolve().parent.parent   # the folder of the import packages
SHIPPED_APP = Path(__file__).resolve().parent / "data"   # an installed wheel's pyproject.toml and configs/
PYPROJECT = "pyproject.toml"


def installed() -> bool:
    """Whether this code runs from an installed wheel (no pyproject.toml beside its packages), not from a
    checkout or an unpacked app bundle."""
    return not (APP_ROOT / PYPROJECT).is_file()


def app_files_root() -> Path:
    """Where pyproject.toml and configs/ are: the app root, or the package data of an installed wheel."""
    return SHIPPED_APP if installed() else APP_ROOT


def configs_dir() -> Path:
    """The configuration root: `$PULSE_TWIN_CONFIGS`, else `configs/` of the app (checkout or wheel)."""
    path = Path(os.environ.get("PULSE_TWIN_CONFIGS", app_files_root() / "configs"))
    if not path.is_dir():
        raise ConfigError(f"configuration directory {path} does not exist (set PULSE_TWIN_CONFIGS)")
    return path


def compose(config_name: str, overrides: Sequence[str] = (), group: str | None = None,
            new_keys: bool = False) -> DictConfig:
    """Compose `configs/[group/]config_name.yaml` with Hydra-style overrides (`key=value`, `group=option`).

    Only settings the configuration has may be set: Hydra's own `hydra.*` settings (which pulse-twin never
    reads) and, unless `new_keys` (a file whose own schema refuses unknown keys, such as a contract), keys
    added with `+` are refused rather than silently ignored."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    root = configs_dir() / group if group else configs_dir()
    _refuse_unread(overrides, new_keys)
    if not (root / f"{config_name}.yaml").is_file():
        choices = sorted(p.stem for p in root.glob("*.yaml")) if root.is_dir() else []
        raise ConfigError(
            f"no configuration '{config_name}' in {root}" + (f" (choose from: {', '.join(choices)})" if choices else "")
        )
    try:
        with initialize_config_dir(config_dir=str(root), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
            choices = dict(cfg.hydra.runtime.choices)
            with open_dict(cfg):
                del cfg["hydra"]
            values = [o for o in overrides if _is_value(o, root)]
            if values:
                defaults = hydra_compose(config_name=config_name, overrides=[o for o in overrides if o not in values])
                _check_types(values, defaults, cfg)
            if group is None:
                _anchor_paths(cfg, root, choices, overrides)
            return cfg
    except (HydraException, OmegaConfBaseException) as err:
        file = root / (config_name + ".yaml")
        raise ConfigError(f"{file}: {_one_line(str(err), new_keys, _dotted_keys(file))}") from None
    except yaml.YAMLError as err:
        raise yaml_error(root / (config_name + '.yaml'), err) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{root / (config_name + '.yaml')}: not a UTF-8 text file") from None


def _refuse_unread(overrides: Sequence[str], new_keys: bool) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    deleted = {o.split("=", 1)[0][1:] for o in overrides if o.startswith("~")}
    seen: dict[str, str] = {}
    for override in overrides:
        setting = _setting(override)
        earlier = seen.get(setting)
        if earlier is not None and "~" not in (override[:1], earlier[:1]) and not _same_value(parser, earlier, override):
            raise ConfigError(f"{override}: '{setting}' is also set by {earlier}; give each setting once "
                              "(the last would silently win)")
        seen[setting] = override
        try:
            parser.parse_override(override)
        except HydraException as err:
            raise ConfigError(f"{override}: not a KEY=VALUE override ({_one_line(str(err))})") from None
        key = override.split("=", 1)[0]
        if key.lstrip("+~").split(".")[0].split("/")[0] == "hydra":
            raise ConfigError(f"{override}: Hydra's own settings are not used by pulse-twin (where runs go is "
                              "runs_dir=DIR or --runs-dir)")
        if key.startswith("+") and not new_keys and key.lstrip("+") not in deleted:
            raise ConfigError(f"{override}: '{key.lstrip('+')}' is not a setting of the configuration; only "
                              f"existing settings can be overridden (to replace one, delete it first: ~{key.lstrip('+')})")


def _same_value(parser: Any, first: str, second: str) -> bool:
    """Two overrides of one setting that set the same value (`x=/a` and `x='/a'`): nothing is lost."""
    try:
        return parser.parse_override(first).value() == parser.parse_override(second).value()
    except Exception:   # a malformed override is named by the parse of it above
        return False


def _setting(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def layered(defaults: Sequence[str], given: Sequence[str]) -> list[str]:
    """A tool's default overrides with a person's on top: each default a person's override also sets is dropped,
    so that the composed overrides set every setting once (`compose` refuses a setting given twice)."""
    mine = {_setting(o) for o in given}
    return [o for o in defaults if _setting(o) not in mine] + list(given)


def _dotted_keys(file: Path) -> list[str]:
    """Every setting of a YAML file as a dotted key (`periods.start`), to suggest the one a typo meant."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    out: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                out.append(f"{prefix}{key}")
                walk(value, f"{prefix}{key}.")

    walk(data, "")
    return out


def _one_line(message: str, new_keys: bool = False, known: Sequence[str] = ()) -> str:
    """Hydra's and OmegaConf's messages, which span several lines, as one line saying what to do; an unknown
    setting close to a `known` one names it."""
    sweep = re.match(r"Ambiguous value for argument '([^']*)'", message)
    if sweep:
        return (f"{sweep.group(1)}: several values; sweep them with -m/--multirun, or write a list as "
                "key=[a,b] or a string as key='a,b'")
    unknown = re.match(r"Could not override '([^']*)'", message)
    if unknown:
        key = unknown.group(1)
        parent, dot, leaf = key.rpartition(".")
        siblings = [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent]
        close = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.8)
        if close:
            return f"{key}: no such setting; did you mean {parent}{dot}{close[0]}?"
        return f"{key}: no such setting" + (f" (to add it: +{key}=VALUE)" if new_keys else " in the configuration")
    missing = re.search(r"Could not find '([^/']*)/([^']*)'", message)
    if missing:
        options = re.findall(r"^\t(\S+)$", message.split("Config search path")[0], flags=re.M)
        return (f"{missing.group(1)}={missing.group(2)}: no such option"
                + (f" (choose from: {', '.join(options)})" if options else ""))
    return " ".join(line.strip() for line in message.splitlines() if line.strip() and not line.startswith("See "))


def sweep(overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of a multirun's overrides (`train.lr=0.01,0.03 seed=1,2` gives four), in Hydra's
    grammar (`a,b`, `range(1,4)`, `choice(...)`), each a plain override list."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as err:
        raise ConfigError(_one_line(str(err))) from None
    choices = []
    for text, o in zip(overrides, parsed):
        if o.is_sweep_override():
            prefix = text.split("=", 1)[0]
            choices.append([f"{prefix}={value}" for value in o.sweep_string_iterator()])
        else:
            choices.append([text])
    return [list(combination) for combination in itertools.product(*choices)]


MEMBER_PATHS = ("node_dir", "feature_dirs", "contract")   # per partner (vertical) or node (horizontal)


def _anchor_paths(cfg: DictConfig, root: Path, choices: dict, overrides: Sequence[str]) -> None:
    """A relative path written in a config file is relative to that file, wherever pulse-twin runs from; one
    typed on the command line stays relative to the working directory. The federation records its file
    (`federation.config_file`) so that a path that is not there can be traced to the file that named it."""
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    given = {key for key in given if not (root / key).is_dir()}   # a group choice (federation=X) sets no path
    written = OmegaConf.to_container(cfg, resolve=False)

    def anchor(key: str, base: Path) -> None:
        value: Any = written
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        typed = any(key == g or key.startswith(g + ".") for g in given)   # set on the command line
        if typed or (key.endswith(".contract") and isinstance(value, str) and not _is_path(value)):
            return
        new = [_anchored(v, base) for v in value] if isinstance(value, list) else _anchored(value, base)
        if new != value:
            OmegaConf.update(cfg, key, new)

    if "runs_dir" in cfg:
        anchor("runs_dir", root)
    if "federation" not in cfg or "federation" not in choices:
        return
    source = root / "federation" / f"{choices['federation']}.yaml"
    with open_dict(cfg):
        cfg.federation.config_file = str(source)
    for key in ("data_root", "label.path", "export.source_dir", "export.areas_file"):
        anchor(f"federation.{key}", source.parent)
    for members in ("partners", "nodes"):
        for name in cfg.federation.get(members) or {}:
            for key in MEMBER_PATHS:
                anchor(f"federation.{members}.{name}.{key}", source.parent)


def _anchored(value: Any, base: Path) -> Any:
    """`value` made absolute against `base` if it is a relative path as written (not an interpolation)."""
    if not isinstance(value, str) or "${" in value or Path(value).is_absolute():
        return value
    return os.path.normpath(base / value)


def _is_path(text: str) -> bool:
    return "/" in text or text.endswith((".yaml", ".yml"))


def node_dir(fed: Any, member: str) -> Path:
    """The node directory of a federation's partner or node, or one error naming the config that set it."""
    spec = (fed.get("partners") or fed.get("nodes") or {})[member]
    path = Path(str(spec["node_dir"]))
    if not path.is_dir():
        source = fed.get("config_file")
        where = (f" (federation '{fed.get('name')}' of {source}: a relative path there is relative to that file, "
                 "one on the command line to the working directory; set --data-root DIR or "
                 "federation.data_root=DIR)") if source else ""
        raise ConfigError(f"{path}: no node directory for '{member}'{where}")
    return path


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


def yaml_error(path: Path, err: yaml.YAMLError) -> ConfigError:
    """A YAML syntax error as one line naming the file and the place, e.g. `not valid YAML (line 16, column 2):
    expected <block end>, but found '-'`; the parser's own text spans lines and draws a caret under a copy of
    the file's line, which a person reads more easily in the file itself."""
    mark = getattr(err, "problem_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return ConfigError(f"{path}: not valid YAML{at}: {problem}")


def load_yaml(path: Path) -> dict:
    """Read one YAML mapping, with one clear error for a missing or malformed file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as err:
        raise yaml_error(path, err) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def to_container(cfg: DictConfig) -> dict:
    """Plain dict of a composed config, interpolations resolved."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


_SPECIAL = re.compile(r"(\\*)('|\$\{|$)")   # a run of backslashes before a quote, `${` or the end


def value_override(key: str, value: object) -> str:
    """`key='value'`, quoted for Hydra's override grammar: a path with a space, a comma, a quote or `${` is
    one plain string, not a sweep, a list or an interpolation."""
    def escape(m: re.Match) -> str:   # backslashes before a quote, `${` or the end are doubled; then escape it
        return m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else "")

    quoted = _SPECIAL.sub(escape, str(value))
    return f"{key}='{quoted}'"

