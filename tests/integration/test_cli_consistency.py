"""`pulse-twin` behaves alike in every command: the same option names for the same things, Hydra overrides
and sweeps, one-line messages for bad values, `--json` beside every table, every problem of a raw file at
once, config paths relative to their config, and results on stdout with progress on stderr."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

import federation.cli
from federation.cli import build_parser, main
from federation.config import APP_ROOT, compose, configs_dir, sweep, to_container
from federation.errors import ConfigError
from tests.support.contract_fixtures import HeerlenFixture
from tests.integration.test_cli_help import all_parsers


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


@pytest.fixture(autouse=True)
def _no_traceback_on_request(monkeypatch):
    monkeypatch.delenv("PULSE_TWIN_DEBUG", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# 1. The same option names for the same things

# What each spelling means; a command that has the thing spells it so, and no other spelling exists.
RETIRED = {"--dir", "--override", "--data-dir", "--nodes-dir", "--out-dir", "--run-dir", "--coordinator"}


def test_no_command_uses_a_retired_spelling():
    used = {(name, s) for name, p in all_parsers() for s in options(p)}
    assert not {(n, s) for n, s in used if s in RETIRED}


@pytest.mark.parametrize("command", ["generate", "demo", "baseline", "federate", "run propose", "run start"])
def test_the_folder_of_node_directories_is_data_root(command):
    parsers = dict(all_parsers())
    assert "--data-root" in options(parsers[command]), command
    assert "--out" not in options(parsers["generate"])


@pytest.mark.parametrize("command", ["demo", "baseline", "federate", "run propose", "run start", "run status",
                                     "run log", "run stop"])
def test_the_folder_of_run_directories_is_runs_dir(command):
    assert "--runs-dir" in options(dict(all_parsers())[command])


def test_overrides_are_positional_key_value_everywhere():
    with_overrides = [name for name, p in all_parsers() if any(a.dest == "overrides" for a in p._actions)]
    assert {"demo", "baseline", "federate", "run propose", "run start", "report", "features", "contract check"} <= set(
        with_overrides)
    for name, p in all_parsers():
        for action in p._actions:
            if action.dest == "overrides":
                assert not action.option_strings and action.nargs == "*" and action.metavar == "KEY=VALUE", name


def test_one_node_directory_is_node_dir_and_the_coordinators_is_coordinator_dir():
    for name, p in all_parsers():
        dirs = [s for s in options(p) if s.endswith("-dir")]
        assert set(dirs) <= {"--node-dir", "--coordinator-dir", "--runs-dir", "--feature-dir"}, (name, dirs)
    assert "--coordinator-dir" in options(dict(all_parsers())["pki init"])


def test_generate_and_demo_generate_the_same_number_of_records_by_default():
    parsers = dict(all_parsers())
    assert parsers["generate"].get_default("records") == parsers["demo"].get_default("records")


def test_pki_init_writes_where_coordinator_start_reads(tmp_path, capsys):
    from server.coordinator import Coordinator

    assert run(capsys, "pki", "init", "--coordinator-dir", str(tmp_path))[0] == 0
    assert Coordinator(tmp_path).ca.is_file()


def test_a_contract_override_is_positional(capsys):
    code, out, _ = run(capsys, "contract", "check", "police", "min_population=1500")
    assert code == 0 and out.startswith("ok: ")
    code, _, err = run(capsys, "contract", "check", "police", "min_pop=1")
    assert code == 2 and "min_pop" in err


# 2. Hydra multirun and unknown keys

def test_sweep_expands_every_combination_in_hydras_grammar():
    combos = sweep(["train.lr=0.01,0.03", "seed=range(1,3)", "federation=heerlen"])
    assert combos == [["train.lr=0.01", "seed=1", "federation=heerlen"], ["train.lr=0.01", "seed=2", "federation=heerlen"],
                      ["train.lr=0.03", "seed=1", "federation=heerlen"], ["train.lr=0.03", "seed=2", "federation=heerlen"]]


def test_multirun_runs_the_command_once_per_combination_and_says_which(monkeypatch, capsys):
    import federation.commands.baseline as baseline

    seen = []

    def fake(args: argparse.Namespace) -> int:
        cfg = compose("config", args.overrides)       # each combination is a valid configuration
        seen.append((args.sweep, float(cfg.train.lr)))
        return 0

    monkeypatch.setattr(baseline, "run", fake)
    code, out, err = run(capsys, "baseline", "-m", "train.lr=0.01,0.03", "seed=1")
    assert code == 0
    assert seen == [((1, "train.lr=0.01 seed=1"), 0.01), ((2, "train.lr=0.03 seed=1"), 0.03)]
    assert "multirun 1/2: train.lr=0.01 seed=1" in err and "multirun 2/2: train.lr=0.03 seed=1" in err
    assert "1: train.lr=0.01 seed=1: ok" in out and "2: train.lr=0.03 seed=1: ok" in out


def test_baseline_multirun_writes_one_result_per_combination_named_by_its_overrides(tmp_path, monkeypatch, capsys):
    import numpy as np

    import federation.task as task

    root = tmp_path / "nodes"
    assert run(capsys, "generate", "--data-root", str(root), "--cities", "heerlen", "--records", "14000", "--months",
               "3", "--quiet")[0] == 0
    for partner in ("police", "municipality", "buurtteams"):
        assert run(capsys, "features", "--contract", partner, "--node-dir", str(root / partner))[0] == 0
    # Training is not what is tested here: a "model" that predicts its number of epochs.
    monkeypatch.setattr(task, "fit", lambda make, ex, cfg: (cfg.epochs, None))
    monkeypatch.setattr(task, "predict", lambda net, ex: np.full(len(ex), float(net), np.float32))
    code, out, err = run(capsys, "baseline", "-m", "train.epochs=1,2", "folds=2", "--data-root", str(root),
                         "--runs-dir", str(tmp_path / "runs"))
    assert code == 0, err
    for number, epochs in ((1, 1), (2, 2)):
        written = json.loads((tmp_path / "runs" / f"baseline-heerlen-{number}.json").read_text())
        assert written["protocol"]["overrides"][0] == f"train.epochs={epochs}"
        assert written["protocol"]["train"]["epochs"] == epochs
        assert f"{number}: train.epochs={epochs} folds=2: ok" in out
    assert "multirun 2/2: train.epochs=2 folds=2" in err and "yardstick for 'heerlen'" in err


def test_multirun_is_offered_where_run_configuration_overrides_are():
    for name in ("baseline", "federate", "run propose", "run start"):
        assert "--multirun" in options(dict(all_parsers())[name]) and "-m" in options(dict(all_parsers())[name])


def test_a_sweep_without_multirun_says_to_use_it(capsys):
    code, _, err = run(capsys, "baseline", "train.lr=0.01,0.03")
    assert code == 2 and "-m/--multirun" in err and err.count("\n") == 1


@pytest.mark.parametrize("override", ["hydra.run.dir=X", "hydra/job_logging=none", "foo.bar=1", "+foo=1",
                                      "train.lrr=0.1"])
def test_unknown_and_hydras_own_keys_are_refused(override):
    with pytest.raises(ConfigError, match=r"^[^\n]+$"):
        compose("config", [override])


def test_a_contract_may_still_add_its_optional_keys_and_a_setting_may_be_replaced_whole():
    compose("buurtteams", ["+blocks.care.mean_contact_hours.emphasis=0.25"], group="contract", new_keys=True)
    cfg = compose("config", ["federation=cities", "~federation.nodes", "+federation.nodes={a:{node_dir:/x}}"])
    assert list(cfg.federation.nodes) == ["a"]


# 3. Every bad value a one-line message, never a traceback

def bad_invocations(tmp: Path) -> list[list[str]]:
    nowhere, empty = str(tmp / "nowhere"), str(tmp / "empty")
    return [
        ["baseline", "federation=nope"], ["baseline", "train.lr=[1"], ["baseline", "train.epochs=two"],
        ["federate", "hydra.run.dir=X"], ["run", "propose", "foo.bar=1"], ["baseline", "--data-root", nowhere],
        ["privacy", "--node-dir", nowhere], ["privacy", "--node-dir", empty], ["node", "audit", "--node-dir", empty],
        ["node", "policy", "--node-dir", nowhere], ["node", "start", "--node-dir", empty, "--superlink", "x"],
        ["features", "--contract", "nope", "--node-dir", empty], ["features", "--contract", "police", "--node-dir", nowhere],
        ["contract", "check", str(tmp / "missing.yaml")], ["contract", "check", str(tmp / "bad.yaml")],
        ["contract", "check", "police", "min_population=abc"], ["report", nowhere], ["report", empty],
        ["report", empty, "fairness.max_mae_gap=abc"], ["generate", "--records", "0"], ["demo", "--records", "0"],
        ["demo", "federation=leicestershire", "--data-root", nowhere], ["demo", "runs_dir=x", "--data-root", nowhere],
        ["demo", "train.epochs=two", "--data-root", nowhere], ["demo", "nope.key=1", "--data-root", nowhere],
        ["generate", "--months", "0", "--data-root", nowhere], ["generate", "--start", "2019-13", "--data-root", nowhere],
        ["run", "status", "x", "--coordinator-dir", nowhere, "--runs-dir", nowhere],
        ["analytics", "--node-dir", nowhere, "--stat", "x"], ["analytics", "--node-dir", empty, "--stat", "x"],
        ["partition", "--contract", str(tmp / "missing.yaml"), "--node-dir", empty, "--by", "x", "--out", nowhere],
        ["coordinator", "register", str(tmp / "nowhere.pub"), "--coordinator-dir", empty],
    ]


def test_every_bad_value_is_one_line_with_exit_code_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    for argv in bad_invocations(tmp_path):
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith("pulse-twin ") and "unexpected error" not in err, (argv, err)


@pytest.mark.parametrize("argv", [["generate", "--records", "many"], ["nope"], ["node", "audit"],
                                  ["privacy", "--node-dir", "x", "--rounds", "-1"]])
def test_a_usage_mistake_is_one_line_too(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--help" in err


def test_a_bug_is_still_one_line_and_its_traceback_on_request(monkeypatch, capsys):
    import federation.commands.report as report

    monkeypatch.setattr(report, "run", lambda args: 1 / 0)
    code, _, err = run(capsys, "report", "x")
    assert code == 1 and err.count("\n") == 1 and "ZeroDivisionError" in err
    monkeypatch.setenv("PULSE_TWIN_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["report", "x"])


# 4. --json wherever a command prints a table

TABLES = ["privacy", "node audit", "node policy", "run status", "run start", "run stop", "analytics", "baseline",
          "contract check", "features", "report"]


@pytest.mark.parametrize("command", TABLES)
def test_every_table_has_json(command):
    assert "--json" in options(dict(all_parsers())[command])


def test_json_output_parses(tmp_path, capsys, monkeypatch):
    code, out, _ = run(capsys, "contract", "check", "police", "--json")
    assert code == 0 and json.loads(out)["name"] == "police"
    monkeypatch.setattr(federation.cli, "COMMANDS", ("node", "features"))
    node = HeerlenFixture().write_police(tmp_path / "police")
    assert run(capsys, "node", "init", "--partner", "police", "--node-dir", str(node))[0] == 0
    code, out, _ = run(capsys, "node", "policy", "--node-dir", str(node), "--json")
    assert code == 0 and json.loads(out)["partner"] == "police"
    code, out, _ = run(capsys, "features", "--contract", "police", "--node-dir", str(node), "--json")
    assert code == 0 and json.loads(out)["stats"]["rows_per_block"]["safety"] > 0
    code, out, _ = run(capsys, "node", "audit", "--node-dir", str(node), "--json")
    assert code == 0 and isinstance(json.loads(out), dict)


# 5. Every kind of bad input in a file, at once

def test_features_reports_every_kind_of_problem_in_a_file_not_only_the_first(tmp_path, capsys):
    fx = HeerlenFixture()
    fx.incidents.loc[4, "prioriteit"] = "abc"          # line 6: not a number
    fx.incidents.loc[1, "prioriteit"] = "2.5"          # line 3: not an integer, the same column
    fx.incidents.loc[5, "datum_registratie"] = "31-02-2020 10:00"   # line 7: another column
    node = fx.write_police(tmp_path / "police")
    code, _, err = run(capsys, "features", "--contract", "police", "--node-dir", str(node))
    assert code == 2
    assert "3 kinds of problem" in err
    for line, text in ((6, "'abc' is not an integer"), (3, "'2.5' is not an integer"), (7, "'31-02-2020 10:00'")):
        assert f"line {line} " in err and text in err, (line, err)


def test_problems_are_reported_up_to_a_limit(tmp_path):
    from clients.contracts import build_features, load_contract
    from clients.contracts.validation import MAX_PROBLEMS
    from federation.errors import ContractError

    fx = HeerlenFixture()
    for column in [c for c in fx.incidents.columns if c != "registratienummer"]:
        fx.incidents.loc[1, column] = "\x01?"
    with pytest.raises(ContractError) as err:
        build_features(load_contract("police"), fx.write_police(tmp_path / "police"))
    lines = str(err.value).splitlines()
    assert 2 <= len(lines) - 1 <= MAX_PROBLEMS


# 6. Paths in configs resolve against the config that names them

def test_relative_paths_in_a_config_are_relative_to_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = to_container(compose("config", ["federation=heerlen"]))
    fed = cfg["federation"]
    assert fed["data_root"] == str(APP_ROOT / "data" / "nodes")
    assert fed["partners"]["police"]["node_dir"] == str(APP_ROOT / "data" / "nodes" / "police")
    assert cfg["runs_dir"] == str(APP_ROOT / "runs")
    assert fed["config_file"] == str(configs_dir() / "federation" / "heerlen.yaml")


def test_a_path_on_the_command_line_stays_relative_to_the_working_directory():
    fed = to_container(compose("config", ["federation=cities", "federation.data_root=here"]))["federation"]
    assert fed["nodes"]["genk"]["node_dir"] == "here/genk"
    fed = to_container(compose("config", ["federation=cities", "~federation.nodes",
                                          "+federation.nodes={a:{node_dir:there}}"]))["federation"]
    assert fed["nodes"]["a"]["node_dir"] == "there"


def test_a_federation_of_ones_own_names_paths_beside_it_and_the_hint_names_it(tmp_path, monkeypatch, capsys):
    configs = tmp_path / "configs"
    shutil.copytree(configs_dir(), configs, ignore=shutil.ignore_patterns("contract", "report", "site_policy"))
    text = (configs / "federation" / "heerlen.yaml").read_text()
    (configs / "federation" / "mine.yaml").write_text(
        text.replace("name: heerlen", "name: mine").replace("node_dir: ${federation.data_root}/police",
                                                           "node_dir: ../../police-node"))
    monkeypatch.setenv("PULSE_TWIN_CONFIGS", str(configs))
    monkeypatch.chdir(APP_ROOT)
    fed = to_container(compose("config", ["federation=mine"]))["federation"]
    assert fed["partners"]["police"]["node_dir"] == str(tmp_path / "police-node")
    code, _, err = run(capsys, "baseline", "federation=mine")
    assert code == 2 and err.count("\n") == 1
    assert str(tmp_path / "police-node") in err and str(configs / "federation" / "mine.yaml") in err


# 7. Results on stdout, progress on stderr through logging

def test_generate_writes_under_data_root_its_result_on_stdout_and_its_progress_on_stderr(tmp_path, capsys):
    code, out, err = run(capsys, "generate", "--data-root", str(tmp_path / "nodes"), "--cities", "heerlen",
                         "--records", "12000", "--months", "2")
    assert code == 0 and (tmp_path / "nodes" / "police" / "raw").is_dir()
    assert out.count("\n") == 1 and out.startswith("wrote ")
    assert "police" in err and "wrote " not in err


def test_tables_are_drawn_by_one_helper():
    from federation.output import table

    lines = table(["model", "R²"], [["pooled", 0.5], ["alone", 0.25]]).splitlines()
    assert [line.split() for line in lines if "0." in line] == [["pooled", "0.500"], ["alone", "0.250"]]


def test_overrides_may_come_before_between_and_after_options():
    args = federation.cli.parse(["federate", "federation=cities", "--data-root", "/x", "train.epochs=2", "--auto-approve",
                                 "seed=3"])
    assert args.overrides == ["federation=cities", "train.epochs=2", "seed=3"] and args.auto_approve
    with pytest.raises(SystemExit):
        federation.cli.parse(["federate", "federation=cities", "--data-root", "/x", "--nope"])
    with pytest.raises(SystemExit):
        federation.cli.parse(["generate", "--records", "5000", "seed=3"])   # a command without overrides
