"""Site policy: templates load, every bad field is named, every rule refuses what it should."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from federation.config import configs_dir
from federation.errors import ConfigError, PolicyRefusal
from clients.site_policy import (
    RuleRefusal,
    append_approval,
    load_site_policy,
    parse_site_policy,
    read_approvals,
)

TEMPLATES = sorted((configs_dir() / "site_policy").glob("*.yaml"))


def write_policy(node_dir: Path, **changes: object) -> Path:
    """The default template with `section.field=value` changes (value None deletes the field)."""
    data = yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for part in parents:
            target = target[part]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    node_dir.mkdir(parents=True, exist_ok=True)
    path = node_dir / "site_policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_templates_cover_heerlen_partners_and_transfer_cities():
    names = {p.stem for p in TEMPLATES}
    assert {"default", "police", "buurtteams", "genk", "sant_boi", "piraeus"} <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_every_template_is_a_valid_policy_with_every_field_commented(template: Path, tmp_path: Path):
    shutil.copy(template, tmp_path / "site_policy.yaml")
    policy = load_site_policy(tmp_path)
    assert policy.policy_version == hashlib.sha256(template.read_bytes()).hexdigest()
    assert policy.privacy.accountant in ("prv", "rdp")
    assert policy.privacy.epsilon_per_year <= policy.privacy.epsilon_lifetime
    lines = template.read_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and ":" in stripped and not stripped.endswith(":"):
            assert lines[number - 1].strip().startswith("#"), f"{template.name}: '{stripped}' has no comment above it"


def test_default_template_has_the_agreed_defaults(tmp_path: Path):
    shutil.copy(configs_dir() / "site_policy" / "default.yaml", tmp_path / "site_policy.yaml")
    policy = load_site_policy(tmp_path)
    assert (policy.privacy.delta, policy.privacy.epsilon_per_year, policy.privacy.epsilon_lifetime) == (1e-5, 10, 30)
    assert policy.bounds.min_noise_multiplier == 0.5
    assert policy.bounds.min_rows_per_release == 1   # a small node can accept it (issue 13)
    assert set(policy.allowed_run_kinds) == {"horizontal", "vertical", "analytics"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"partner": "Police Node"}, "partner"),
        ({"privacy__delta": 0}, "privacy.delta"),
        ({"privacy__delta": "tiny"}, "privacy.delta"),
        ({"privacy__delta": 0.5}, "privacy.delta"),     # every epsilon would be 0: no cap binds (issue 27)
        ({"privacy__delta": 1e-4}, "privacy.delta"),    # above the largest delta a site may account at
        ({"privacy__epsilon_per_year": None}, "privacy.epsilon_per_year"),
        ({"privacy__epsilon_lifetime": -1}, "privacy.epsilon_lifetime"),
        ({"privacy__epsilon_per_year": 40}, "privacy.epsilon_per_year"),
        ({"privacy__accountant": "gdp"}, "privacy.accountant"),
        ({"allowed_run_kinds": ["horizontal", "anything"]}, "allowed_run_kinds"),
        ({"allowed_run_kinds": []}, "allowed_run_kinds"),
        ({"bounds__min_noise_multiplier": 0}, "bounds.min_noise_multiplier"),
        ({"bounds__max_sample_rate": 1.5}, "bounds.max_sample_rate"),
        ({"bounds__min_rows_per_release": 2.5}, "bounds.min_rows_per_release"),
        ({"bounds__max_rounds_per_run": True}, "bounds.max_rounds_per_run"),
        ({"bounds__max_bytes_per_message": None}, "bounds.max_bytes_per_message"),
        ({"bounds__max_sample_rat": 0.1}, "bounds.max_sample_rat"),
        ({"approved_bundles": ["not-a-hash"]}, "approved_bundles"),
        ({"privacy": "strict"}, "privacy"),
    ],
)
def test_a_bad_field_is_one_config_error_naming_file_and_field(tmp_path: Path, changes: dict, field: str):
    path = write_policy(tmp_path, **changes)
    with pytest.raises(ConfigError) as err:
        load_site_policy(tmp_path)
    assert str(path) in str(err.value)
    assert f"'{field}'" in str(err.value)


def test_missing_or_malformed_policy_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no site policy"):
        load_site_policy(tmp_path)
    (tmp_path / "site_policy.yaml").write_text("privacy: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_site_policy(tmp_path)


def test_yaml_scientific_notation_without_dot_is_read_as_a_number(tmp_path: Path):
    path = write_policy(tmp_path)
    path.write_text(path.read_text().replace("1.0e-05", "1e-5"))
    assert "1e-5" in path.read_text()
    assert load_site_policy(tmp_path).privacy.delta == 1e-5


def test_policy_version_is_the_hash_of_the_file_bytes_and_changes_with_any_edit(tmp_path: Path):
    path = write_policy(tmp_path)
    first = load_site_policy(tmp_path).policy_version
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text(path.read_text() + "# a comment changes the version too\n")
    assert load_site_policy(tmp_path).policy_version != first


def test_approvals_count_as_approved_bundles_and_bad_lines_are_named(tmp_path: Path):
    write_policy(tmp_path, approved_bundles=["a" * 64])
    assert load_site_policy(tmp_path).approved_bundles == {"a" * 64}
    append_approval(tmp_path, {"bundle_hash": "b" * 64, "run_name": "r1"})
    assert load_site_policy(tmp_path).approved_bundles == {"a" * 64, "b" * 64}
    assert [a["run_name"] for a in read_approvals(tmp_path)] == ["r1"]
    approvals = tmp_path / "state" / "approvals.jsonl"
    with open(approvals, "a") as handle:
        handle.write("{broken\n")
    with pytest.raises(ConfigError, match=r"approvals.jsonl, line 2"):
        load_site_policy(tmp_path)


def policy_for_rules(tmp_path: Path):
    write_policy(
        tmp_path, allowed_run_kinds=["vertical"], bounds__min_noise_multiplier=0.8, bounds__max_sample_rate=0.05,
        bounds__min_rows_per_release=30, bounds__max_rounds_per_run=10, bounds__max_bytes_per_message=1000,
        approved_bundles=["c" * 64],
    )
    return load_site_policy(tmp_path)


@pytest.mark.parametrize(
    ("check", "bad", "good", "rule", "says"),
    [
        ("check_run_kind", "horizontal", "vertical", "allowed_run_kinds", "run kind 'horizontal'"),
        ("check_bundle", "d" * 64, "c" * 64, "approved_bundles", "not approved"),
        ("check_noise_multiplier", 0.79, 0.8, "bounds.min_noise_multiplier", "0.79 is below the node's minimum 0.8"),
        ("check_sample_rate", 0.051, 0.05, "bounds.max_sample_rate", "0.051 is above the node's maximum 0.05"),
        ("check_rows", 29, 30, "bounds.min_rows_per_release", "29 rows, fewer than the node's minimum 30"),
        ("check_rounds", 11, 10, "bounds.max_rounds_per_run", "round 11"),
        ("check_bytes", 1001, 1000, "bounds.max_bytes_per_message", "1,001 bytes"),
    ],
)
def test_each_rule_refuses_just_past_its_bound_and_names_itself(tmp_path, check, bad, good, rule, says):
    policy = policy_for_rules(tmp_path)
    getattr(policy, check)(good)  # at the bound: allowed
    with pytest.raises(PolicyRefusal) as err:
        getattr(policy, check)(bad)
    assert isinstance(err.value, RuleRefusal) and err.value.rule == rule
    assert f"rule '{rule}'" in str(err.value) and says in str(err.value)


def test_budget_caps_are_the_policy_caps(tmp_path: Path):
    write_policy(tmp_path, privacy__epsilon_per_year=4, privacy__epsilon_lifetime=9, privacy__accountant="rdp")
    caps = load_site_policy(tmp_path).budget_caps()
    assert (caps.epsilon_per_year, caps.epsilon_lifetime, caps.delta, caps.accountant) == (4, 9, 1e-5, "rdp")


def test_parse_rejects_a_policy_without_partner():
    data = yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    del data["partner"]
    with pytest.raises(ConfigError, match="'partner'"):
        parse_site_policy(data, Path("x/site_policy.yaml"), "")


def test_delta_must_be_below_one_over_the_rows_of_a_release(tmp_path: Path):
    """At delta >= 1/n, publishing one of n rows exactly meets (0, delta)-DP: the guard refuses such a release."""
    write_policy(tmp_path, privacy__delta=1e-5)
    policy = load_site_policy(tmp_path)
    policy.check_rows(99_999)                      # control: 1e-5 < 1/99,999
    with pytest.raises(RuleRefusal) as err:
        policy.check_rows(100_000)
    assert err.value.rule == "privacy.delta" and "not below 1/(the 100,000 rows" in str(err.value)
    write_policy(tmp_path, privacy__delta=1e-6)
    load_site_policy(tmp_path).check_rows(100_000)   # a smaller delta takes the larger release


def test_the_largest_delta_is_accepted_and_named_in_the_refusal(tmp_path: Path):
    write_policy(tmp_path, privacy__delta=1e-5)
    assert load_site_policy(tmp_path).privacy.delta == 1e-5
    write_policy(tmp_path, privacy__delta=2e-5)
    with pytest.raises(ConfigError, match=r"'privacy.delta' must be > 0 and <= 1e-05, got 2e-05"):
        load_site_policy(tmp_path)
