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
