"""The twin colleague (`pulse-twin ask`): refusals, questions back, traceable numbers, no change beyond the noise.

The run is benchmarks/ask/fixture.py: 24 months of a released label with two planted changes (Vrieheide falls
0.30 from 2020-06, beyond the noise; Passart moves 0.01, inside it), once without forecast artefacts (today's
runs) and once with them (forecast/skill.json, predictions.csv, warnings.csv) and an action log."""
from __future__ import annotations

import json

import pytest

from benchmarks.ask.fixture import write_run
from federation.cli import main
from server.ask import Colleague
from server.ask.trace import untraceable


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run written once; `plain` is it without forecast artefacts and action log, `refused` with a gate
    that withholds the model (the same releases, so the same figures)."""
    import shutil

    root = tmp_path_factory.mktemp("ask")
    full = write_run(root / "full", forecast=True, actions=True)
    plain, refused = shutil.copytree(full, root / "plain"), shutil.copytree(full, root / "refused")
    shutil.rmtree(plain / "forecast")
    (plain / "actions.yaml").unlink()
    skill = json.loads((refused / "forecast" / "skill.json").read_text())
    skill["gate"].update({"releasable": False, "skill": -0.03, "skill_lo": -0.11, "skill_hi": 0.05})
    (refused / "forecast" / "skill.json").write_text(json.dumps(skill))
    return {"plain": plain, "full": full, "refused": refused}


@pytest.fixture(scope="module")
def plain(runs):
    return Colleague(runs["plain"])


@pytest.fixture(scope="module")
def full(runs):
    return Colleague(runs["full"])


@pytest.mark.parametrize("question, kind", [
    ("Waar woont Jan de Vries?", "person"),
    ("Which residents of Meezenbroek are on benefits?", "person"),
    ("Where does Smith live?", "person"),
    ("Hoeveel meldingen heeft mijn buurman in Vrieheide gedaan?", "person"),
    ("Wat is de leefbaarheid op Akerstraat 12?", "address"),
    ("How safe is 6411 AB?", "address"),
    ("Welke gezinnen in Passart hebben schulden?", "household"),
    ("Waar wonen de meeste Marokkanen?", "protected_group"),
    ("Which buurten have the most non-western migrants?", "protected_group"),
    ("Is er meer overlast in buurten met veel moslims?", "protected_group"),
    ("Vrieheide minus its neighbours", "differencing"),
    ("Geef wijk 20 zonder Vrieheide", "differencing"),
])
def test_a_question_about_a_person_address_household_protected_group_or_difference_is_refused(plain, question, kind):
    answer = plain.ask(question)
    assert answer.status == "refused" and answer.refusal["kind"] == kind, answer.text
    assert answer.plan is None and not answer.facts          # nothing was read
    assert len(answer.sentences) == 3                         # that it is refused, why, and what to ask instead


@pytest.mark.parametrize("question", ["Welke buurten gaan verslechteren?", "How is Schandelen doing?",
                                      "What did the household size do in Passart?",
                                      "Is the share of low-income households a driver for Vrieheide?"])
def test_an_ordinary_question_is_not_refused(plain, question):
    assert plain.ask(question).status != "refused"


def test_an_ambiguous_name_asks_back_and_a_qualified_one_does_not(plain):
    answer = plain.ask("Hoe gaat het in Heksenberg?")
    assert answer.status == "clarify" and answer.plan is None
    assert "BU09172200" in answer.text and "WK091722" in answer.text
    assert plain.ask("Hoe gaat het in wijk Heksenberg?").plan["areas"] == ["WK091722"]
    assert plain.ask("Hoe gaat het in buurt Heksenberg?").plan["areas"] == ["BU09172200"]


def test_a_misspelt_question_word_still_finds_its_intent(plain):
    assert plain.ask("Welke buurten gaan verslechtren?").plan["intent"] == "worsen"


def test_a_figure_the_coordinator_does_not_hold_is_said_so(plain):
    answer = plain.ask("Hoeveel inbraken waren er in Vrieheide?")
    assert answer.status == "no_data" and "'inbraken'" in answer.text and not answer.facts


def test_a_typo_and_a_local_name_resolve(plain):
    assert plain.ask("Is Vriehiede veranderd sinds de zomer?").plan["areas"] == ["BU09172004"]
    plan = plain.ask("What is the liveability of Heerlen-Noord over the last 6 months?").plan
    assert plan["areas"] == ["Heerlen-Noord"] and plan["period"] == ["2020-07", "2020-12"]


def test_a_change_inside_its_interval_is_no_change_beyond_the_noise(plain):
    answer = plain.ask("Is de leefbaarheid in Passart veranderd sinds de zomer?")
    assert answer.status == "answer" and "geen verandering buiten de ruis" in answer.text
    assert "no change beyond the noise" in plain.ask("Has Passart changed since the summer?").text
    falling = plain.ask("Has Vrieheide changed since the summer?")
    assert "declined" in falling.text and "a change beyond the noise" in falling.text


QUESTIONS = ["Welke buurten gaan verslechteren en waarom?", "Hoe is de leefbaarheid in Vrieheide veranderd sinds maart?",
             "Compare Passart and Vrieheide over the last 6 months", "What is the liveability of Heerlen-Noord in 2019?",
             "Wat is de voorspelling voor Vrieheide over 3 maanden?", "Waarom is de voorspelling voor Schandelen zo?",
             "What left the police node and at what privacy cost?", "Wat heeft de gemeente gedaan in Vrieheide?",
             "What could be a plan for Schandelen?", "Vergelijk de voorspellingen voor Passart en Vrieheide",
             "Hoe leefbaar is de hele stad dit jaar?"]


@pytest.mark.parametrize("which", ["plain", "full", "refused"])
def test_every_number_of_an_answer_traces_to_an_artefact(runs, which):
    colleague = Colleague(runs[which])
    for question in QUESTIONS:
        answer = colleague.ask(question)
        assert answer.status != "refused", question
        assert untraceable(answer.to_dict(), runs[which], colleague.settings.values) == [], (question, answer.text)


def test_the_trace_check_finds_a_number_no_artefact_gives(full, runs):
    answer = full.ask("Hoe is de leefbaarheid in Vrieheide veranderd sinds maart?").to_dict()
    assert untraceable(answer, runs["full"], full.settings.values) == []
    planted = {**answer, "text": answer["text"] + " Dat is 7,31 punt meer dan in Passart."}
    assert untraceable(planted, runs["full"], full.settings.values) == ["7,31"]
    wrong = {**answer, "facts": json.loads(json.dumps(answer["facts"]).replace('"y_dp"', '"pred"'))}
    assert untraceable(wrong, runs["full"], full.settings.values)   # the text's figures no longer re-derive


def test_which_areas_worsen_with_and_without_the_forecast_artefacts(plain, full, runs):
    today = plain.ask("Welke buurten gaan verslechteren?")
    assert "BU09172004" in today.text and "forecast/skill.json" in today.text     # no skill table: said so
    with_skill = full.ask("Which areas are expected to worsen?")
    assert "BU09172004" in with_skill.text and "skill over the best naive forecast" in with_skill.text
    assert "associations in the model, not causes" in with_skill.text
    assert "no verdict at 6 month(s)" in full.ask("Which areas will worsen in 6 months?").text   # the gate is at 3
    refused = Colleague(runs["refused"]).ask("Which areas are expected to worsen?")
    assert "the naive forecast is the better guide" in refused.text and "from 4" not in refused.text
    caution = Colleague(runs["refused"]).ask("What is the forecast for Vrieheide in 3 months?")
    assert "does not forecast better than the naive forecast" in caution.text


def test_the_action_log_is_read_when_there_is_one(plain, full):
    assert "geen actielogboek" in plain.ask("Wat heeft de gemeente gedaan in Vrieheide?").text
    answer = full.ask("Wat heeft de gemeente gedaan in Vrieheide?")
    assert "Extra schoonmaakrondes" in answer.text and "geen bewezen effect" in answer.text


def test_a_question_nothing_understands_gets_the_list_of_what_can_be_asked(plain):
    answer = plain.ask("Hallo, goedemorgen!")
    assert answer.status == "unknown" and "U kunt vragen" in answer.text


def test_the_command_answers_in_json_and_names_a_missing_run(runs, tmp_path, capsys):
    assert main(["ask", "Hoe staat Passart ervoor?", "--run", str(runs["plain"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "answer" and out["plan"]["areas"] == ["BU09172100"] and out["facts"]
    assert main(["ask", "Waar woont Jan de Vries?", "--run", str(runs["plain"])]) == 3
    assert main(["ask", "Hoe staat Passart ervoor?", "--run", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_the_frozen_evaluation_set_covers_every_intent_in_both_languages():
    from benchmarks.ask.make_questions import OUT

    items = json.loads(OUT.read_text(encoding="utf-8"))["items"]
    in_scope = [i for i in items if i["kind"] == "in_scope"]
    probes = [i for i in items if i["kind"] == "probe"]
    assert len(in_scope) >= 300 and len(probes) >= 60
    assert {i["gold"]["intent"] for i in in_scope} == {"worsen", "change", "compare", "figure", "drivers", "privacy",
                                                      "actions"}
    assert {i["lang"] for i in in_scope} == {"nl", "en"} == {i["lang"] for i in probes}
    assert {i["gold"]["refusal"] for i in probes} == {"person", "address", "household", "protected_group",
                                                     "differencing"}


def test_a_place_the_run_does_not_know_is_asked_back_not_answered_for_the_city(plain):
    for question in ("Hoe is het in Amsterdam?", "Wat is de leefbaarheid in wijk 99?"):
        answer = plain.ask(question)
        assert answer.status == "clarify" and not answer.facts, answer.text


def test_a_plan_is_validated_before_it_runs(plain):
    from server.ask.plan import QueryPlan, validate

    good = plain.plan("Vergelijk Passart met Vrieheide").plan
    assert validate(good, plain.gazetteer) == []
    bad = QueryPlan("compare", ("BU09999999",), "crime", ("2020-13", "2020-01"), 0)
    problems = " ".join(validate(bad, plain.gazetteer))
    for part in ("BU09999999", "metric 'crime'", "period", "horizon 0", "two areas"):
        assert part in problems


def test_a_corrupt_artefact_is_one_message_naming_the_file(runs, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(runs["plain"], broken)
    (broken / "holdout_predictions.csv").write_text("area_code,period\nBU09172004,2020-01\n")
    assert main(["ask", "Hoe staat Passart ervoor?", "--run", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "holdout_predictions.csv: column 'y_dp' is missing" in err and "Traceback" not in err


def test_a_transfer_citys_own_codes_are_places():
    from server.ask.gazetteer import build
    from server.ask.settings import load_settings

    gaz = build(["BE-GNK:0001", "BE-GNK:0002"], load_settings().places, "Genk")
    found, unclear = gaz.find(["hoe", "staat", "be-gnk", "0002", "ervoor"], 0.84, 0.04)
    assert [m.place.key for m in found] == ["BE-GNK:0002"] and not unclear
    assert gaz.places["city"].codes == ("BE-GNK:0001", "BE-GNK:0002")


def test_the_labels_kept_release_history_is_read_and_cited_where_the_run_kept_it(runs, tmp_path):
    """A run that kept `releases/label.csv` (every released month, not only the held-out origins) answers from it,
    cites it, and every number still traces; the same run without it cites holdout_predictions.csv (control)."""
    import shutil

    import pandas as pd

    from server.ask.store import RunStore

    kept = tmp_path / "kept"
    shutil.copytree(runs["plain"], kept)
    cells = RunStore(runs["plain"]).cells
    history = pd.DataFrame([{"area_code": a, "period": m, "value": f.value} for (a, m), f in cells.items()])
    (kept / "releases").mkdir(exist_ok=True)
    history.assign(value=history["value"] + 0.5).to_csv(kept / "releases" / "label.csv", index=False)
    question = "Compare Passart and Vrieheide over the last 6 months"
    with_history, without = Colleague(kept).ask(question), Colleague(runs["plain"]).ask(question)
    assert "releases/label.csv" in with_history.text and "holdout_predictions.csv" not in with_history.text
    assert "holdout_predictions.csv" in without.text
    assert untraceable(with_history.to_dict(), kept, Colleague(kept).settings.values) == []
    assert RunStore(kept).cells[next(iter(cells))].value == pytest.approx(next(iter(cells.values())).value + 0.5)


# --- a place the twin does not know; misspelt protected groups; settings; language files; periods; action log


@pytest.mark.parametrize("question, said", [
    ("Hoe staat Amsterdam ervoor?", "Amsterdam"), ("How is Maastricht doing?", "Maastricht"),
    ("How is Den Haag doing?", "Den Haag"), ("Vergelijk Vrieheide met Maastricht", "Maastricht"),
    ("Hoe staat BU09999999 ervoor?", "BU09999999"), ("Wat is de leefbaarheid in wijk 99?", "wijk 99")])
def test_a_place_the_twin_does_not_know_is_said_so_and_no_other_areas_figure_is_given(plain, runs, capsys,
                                                                                        question, said):
    answer = plain.ask(question)
    assert answer.status == "clarify" and answer.plan is None and not answer.facts, answer.text
    assert f"'{said}'" in answer.text
    assert main(["ask", question, "--run", str(runs["plain"])]) == 3      # docs/ask.md: asked back
    assert f"'{said}'" in capsys.readouterr().out


@pytest.mark.parametrize("question", [
    "Hoe staat Heerlen ervoor in Januari?", "What changed in Passart since March?", "Hoe staat Vriehiede ervoor?",
    "Is de Wmo-steun in Vrieheide een factor?", "Geef de leefbaarheid van Heerlen-Noord.",
    "What did the city do in Passart?",
    "Welke buurten gaan verslechteren? Toon ze.", "Hoe staat het met de Leefbaarhied in Passart?"])
def test_ordinary_capitalised_words_are_not_unknown_places(plain, question):
    planned = plain.plan(question)
    assert not planned.unknown and planned.plan is not None, question


def test_no_in_scope_question_of_the_frozen_set_is_asked_back_for_a_place_a_period_or_a_date(plain):
    from benchmarks.ask.make_questions import OUT

    items = json.loads(OUT.read_text(encoding="utf-8"))["items"]
    for item in (i for i in items if i["kind"] == "in_scope"):
        planned = plain.plan(item["question"])
        assert not (planned.unknown or planned.unread or planned.bad_date), (item["question"], planned)


@pytest.mark.parametrize("question", [
    "Welke buurten met veel Marrokanen gaan verslechteren?", "Which areas with many Morrocans will get worse?",
    "Hoeveel statushoudrs wonen in Vrieheide?", "Waar wonen de meeste vluchtelingne?",
    "Is er meer overlast in buurten met veel Surinamrs?", "Which areas have the most immigrnats?"])
def test_a_misspelt_protected_group_is_refused_like_the_right_spelling(plain, question):
    answer = plain.ask(question)
    assert answer.status == "refused" and answer.refusal["kind"] == "protected_group", answer.text
    assert not answer.facts


@pytest.mark.parametrize("word", ["national", "nationally", "international", "travelled", "Christmas", "police",
                                  "experts", "blocks", "writes", "refuge", "polder", "marketing", "Molenberg"])
def test_an_ordinary_word_near_a_protected_word_is_not_refused(plain, word):
    assert plain.plan(f"What is the {word} liveability of Vrieheide?").refusal is None, word


def test_no_word_the_colleague_knows_or_place_it_knows_is_refused_as_a_misspelt_group(plain):
    from server.ask.check import misspelt_group

    group = plain.settings.refusals["protected_group"]
    cutoff = float(plain.settings.values["fuzzy_cutoff"])
    known = plain.settings.vocabulary | plain.gazetteer.vocabulary
    for word in sorted(known):
        assert misspelt_group(group, [word], cutoff, known - {word}) is None or word in (
            group.get("ordinary") or []), word


@pytest.mark.parametrize("override, key", [
    ("interval_level=1.5", "interval_level"), ("interval_level=0", "interval_level"),
    ("window_months=0", "window_months"), ("window_months=99", "window_months"),
    ("fuzzy_cutoff=0.1", "fuzzy_cutoff"), ("fuzzy_cutoff=1.5", "fuzzy_cutoff"),
    ("ambiguity_margin=-0.1", "ambiguity_margin"), ("max_listed_areas=0", "max_listed_areas")])
def test_a_numeric_setting_out_of_range_is_one_message_naming_it_and_its_range(runs, capsys, override, key):
    assert main(["ask", "Hoe staat Passart ervoor?", "--run", str(runs["plain"]), override]) == 2
    err = capsys.readouterr().err
    assert f"{override} is outside its range: give " in err and "Traceback" not in err
    assert "StatisticsError" not in err and "unexpected error" not in err


def test_every_numeric_setting_of_the_colleague_has_a_range_and_its_defaults_are_inside(runs):
    from federation.config import configs_dir, load_yaml
    from server.ask.settings import LIMITS, load_settings

    values = load_yaml(configs_dir() / "ask" / "default.yaml")
    numeric = {k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric == set(LIMITS)
    for key, allowed in LIMITS.items():     # the bounds that are allowed load
        for edge, ok in ((allowed.low, not allowed.low_open), (allowed.high, not allowed.high_open)):
            if ok:
                value = int(edge) if allowed.whole else edge
                assert Colleague(runs["plain"], load_settings([f"{key}={value}"])).ask(
                    "Hoe staat Passart ervoor?").status in ("answer", "no_data")


def _settings_copy(tmp_path, edit, languages=("nl", "en")):
    """A copy of configs/ask whose language files `edit(code, text)` changes, read as the colleague reads it."""
    import shutil

    from federation.config import configs_dir, load_yaml
    from server.ask.settings import _with

    folder = tmp_path / "ask"
    shutil.copytree(configs_dir() / "ask", folder)
    for file in (folder / "lang").glob("*.yaml"):
        file.write_text(edit(file.stem, file.read_text(encoding="utf-8")), encoding="utf-8")
    values = {**load_yaml(folder / "default.yaml"), "languages": list(languages)}
    return _with(values, folder, str(folder / "default.yaml"))


def test_a_language_files_placeholder_the_dutch_text_does_not_use_is_one_message_when_loaded(tmp_path):
    from federation.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _settings_copy(tmp_path, lambda code, text: text.replace("{place}", "{plaats}") if code == "en" else text)
    assert "en.yaml: text 'place.members' has the placeholder {plaats}" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _settings_copy(tmp_path / "b", lambda code, text: text.replace("{said}'", "{said'") if code == "nl" else text)
    assert "nl.yaml: text '" in str(err.value) and "placeholder" in str(err.value)


def test_a_placeholder_the_colleague_does_not_fill_is_one_message_naming_the_file_and_text(runs, tmp_path, capsys):
    from federation.errors import ConfigError

    settings = _settings_copy(tmp_path, lambda code, text: text.replace("{place}", "{plaats}"), languages=("nl",))
    with pytest.raises(ConfigError) as err:
        Colleague(runs["plain"], settings).ask("Hoe staat Passart ervoor?")
    message = str(err.value)
    assert "nl.yaml: text 'level.sentence' has the placeholder {plaats}" in message and "KeyError" not in message


@pytest.mark.parametrize("typo, right", [
    ("What changed in Vrieheide since last sumer?", "What changed in Vrieheide since last summer?"),
    ("Wat is er veranderd in Vrieheide sinds de zomr?", "Wat is er veranderd in Vrieheide sinds de zomer?"),
    ("Is Passart veranderd sinds Febuary 2020?", "Is Passart veranderd sinds February 2020?"),
    ("Hoe is Passart veranderd sinds de herfts?", "Hoe is Passart veranderd sinds de herfst?")])
def test_a_misspelt_month_or_season_is_read_like_a_misspelt_place(plain, typo, right):
    got, want = plain.ask(typo), plain.ask(right)
    assert got.status == want.status == "answer" and got.plan["period"] == want.plan["period"], got.text


@pytest.mark.parametrize("question, said", [
    ("What changed in Vrieheide since the action started?", "since the action"),
    ("Wat is er veranderd in Passart sinds de opening?", "sinds de opening")])
def test_a_period_the_colleague_cannot_read_is_said_not_replaced_by_the_default(plain, question, said):
    answer = plain.ask(question)
    assert answer.status == "clarify" and answer.plan is None and not answer.facts
    assert f"'{said}'" in answer.text


@pytest.mark.parametrize("question, said", [
    ("Wat is er veranderd in Vrieheide sinds 31-02-2020?", "31-02-2020"),
    ("What changed in Vrieheide since 2020-13?", "2020-13"), ("Hoe was Passart sinds 13/2020?", "13/2020"),
    ("Wat is er veranderd in Passart sinds 30 februari 2020?", "30 februari 2020"),
    ("What changed in Passart since 2020-02-30?", "2020-02-30")])
def test_an_impossible_date_is_refused_naming_it(plain, runs, question, said):
    answer = plain.ask(question)
    assert answer.status == "invalid" and answer.plan is None and not answer.facts
    assert f"'{said}'" in answer.text
    assert untraceable(answer.to_dict(), runs["plain"], plain.settings.values) == []


def test_a_date_that_exists_is_read(plain):
    assert plain.ask("Wat is er veranderd in Vrieheide sinds 15-03-2020?").plan["period"][0] == "2020-03"
    assert plain.ask("What changed in Vrieheide since 2020-02-29?").plan["period"][0] == "2020-02"


def test_a_configured_action_log_that_cannot_be_read_is_one_message_naming_it(runs, tmp_path, capsys):
    question = "Wat heeft de gemeente gedaan in Vrieheide?"
    missing = tmp_path / "nonexistent.yaml"
    assert main(["ask", question, "--run", str(runs["plain"]), f"action_log={missing}"]) == 3
    out = capsys.readouterr().out
    assert str(missing) in out and len(out.strip().splitlines()) == 1
    broken = tmp_path / "broken.yaml"
    broken.write_text("actions: [\n", encoding="utf-8")
    assert main(["ask", question, "--run", str(runs["plain"]), f"action_log={broken}"]) == 3
    assert str(broken) in capsys.readouterr().out
    assert Colleague(runs["plain"]).ask(question).status == "no_data"        # no log at all: said, exit 3


@pytest.mark.parametrize("row, field, value", [
    ("    area: BU09999999\n    start: 2020-05\n", "area", "BU09999999"),
    ("    area: Vrieheide\n    start: 2020-13\n", "start", "2020-13"),
    ("    area: Vrieheide\n    start: 2020-02-30\n", "start", "2020-02-30"),
    ("    area: Vrieheide\n    start: 2020-05\n    end: 2020-01\n", "end", "2020-01"),
    ("    area: Vrieheide\n", "start", "")])
def test_a_bad_row_of_the_action_log_is_one_message_naming_the_file_row_and_field(runs, tmp_path, row, field, value):
    from server.ask.settings import load_settings

    log = tmp_path / "actions.yaml"
    log.write_text("actions:\n  - action: Extra verlichting\n    area: BU09172004\n    start: 2020-03\n"
                   f"  - action: Buurtpreventie\n{row}", encoding="utf-8")
    answer = Colleague(runs["plain"], load_settings([f"action_log={log}"])).ask(
        "What did the city do in Vrieheide?")
    assert answer.status == "no_data" and len(answer.sentences) == 1, answer.text
    text = answer.text
    assert str(log) in text and "action 2 (line 5)" in text and f"'{field}'" in text and value in text
    assert untraceable(answer.to_dict(), runs["plain"], {}) == []


def test_a_privacy_figure_its_release_history_does_not_give_is_refused_or_not_printed(runs, tmp_path, capsys):
    """Every epsilon printed comes from an accountant fed with the releases the node's file lists
    (`server.report.privacy.checked_reports`, the reading the report and the twin use too)."""
    import shutil

    question = "What left the police node and at what privacy cost?"
    run = shutil.copytree(runs["plain"], tmp_path / "run")
    path = run / "privacy" / "police.json"
    honest = json.loads(path.read_text())
    assert main(["ask", question, "--run", str(run)]) == 0
    assert f"ε {honest['epsilon']:.2f}" in capsys.readouterr().out
    path.write_text(json.dumps({**honest, "epsilon": honest["epsilon"] / 5}))
    assert main(["ask", question, "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "release history it lists gives" in err and "Traceback" not in err
    # a file that does not hold the history to recompute its figure: the figure is not printed
    path.write_text(json.dumps({**honest, "releases": int(honest["releases"]) + 1}))
    assert main(["ask", question, "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "cannot be recomputed from the release history" in out and f"ε {honest['epsilon']:.2f}" not in out
