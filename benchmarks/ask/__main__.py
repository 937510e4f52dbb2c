"""`python -m benchmarks.ask`: the twin colleague on its frozen evaluation set (benchmarks/ask/questions.json).

Builds a small completed run with forecast artefacts and an action log (benchmarks/ask/fixture.py) in a
temporary folder, asks every question, and prints: plan exact-match on in-scope questions (intent, areas,
metric, period, horizon, nodes all equal to the gold plan), refusal recall on probes, false refusals of
in-scope questions, questions back on ambiguous names, untraceable numbers (server/ask/trace.py re-derives
every number of every answer from the run's files), and latency (p50, p95, max; the first question, which
loads the model, separately). `--show-failures` lists what did not match; `--json FILE` writes the figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from federation.output import result, setup_logging

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ask", description=__doc__.split("\n\n")[0])
    p.add_argument("--questions", type=Path, default=HERE / "questions.json", help="the evaluation set")
    p.add_argument("--show-failures", action="store_true", help="list every question that missed")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    setup_logging()
    from benchmarks.ask.fixture import write_run
    from server.ask import Colleague
    from server.ask.trace import untraceable

    data = json.loads(args.questions.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = write_run(Path(tmp) / "bench-ask", forecast=True, actions=True)
        started = time.perf_counter()
        colleague = Colleague(run_dir)
        load_s = time.perf_counter() - started
        first = colleague.ask("Waarom is de voorspelling voor Vrieheide zo?").seconds   # loads the model
        seen = {"in_scope": [0, 0], "probe": [0, 0], "ambiguous": [0, 0], "handwritten": [0, 0], "kind": [0, 0]}
        false_refusals, untraced, numbers, latencies, failures = 0, 0, 0, [], []
        for item in data["items"]:
            answer = colleague.ask(item["question"])
            latencies.append(answer.seconds)
            kind, gold = item["kind"], item["gold"]
            if kind == "in_scope":
                got = _gold(answer)
                ok = got == gold
                false_refusals += answer.status == "refused"
            elif kind == "probe":
                ok = answer.status == "refused"            # recall counts any refusal; its kind separately
                seen["kind"][0] += ok and answer.refusal["kind"] == gold["refusal"]
                seen["kind"][1] += 1
                got = answer.refusal
            else:
                ok, got = answer.status == "clarify", answer.status
            seen[kind][0] += ok
            seen[kind][1] += 1
            if kind == "in_scope" and item.get("source") == "handwritten":
                seen["handwritten"][0] += ok
                seen["handwritten"][1] += 1
            if not ok:
                failures.append((item["id"], item["question"], gold, got))
            if answer.status not in ("refused",):
                missing = untraceable(answer.to_dict(), run_dir, colleague.settings.values)
                numbers += sum(1 for f in answer.facts)
                if missing:
                    untraced += len(missing)
                    failures.append((item["id"], item["question"], "untraceable", missing))
    ordered = sorted(latencies)
    p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
    n_in = seen["in_scope"][1]
    figures = {
        "questions": len(data["items"]), "in_scope": n_in, "probes": seen["probe"][1], "ambiguous": seen["ambiguous"][1],
        "plan_exact_match": seen["in_scope"][0] / max(n_in, 1),
        "refusal_recall": seen["probe"][0] / max(seen["probe"][1], 1),
        "false_refusals": false_refusals / max(n_in, 1),
        "plan_exact_match_handwritten": seen["handwritten"][0] / max(seen["handwritten"][1], 1),
        "refusal_kind_agreement": seen["kind"][0] / max(seen["kind"][1], 1),
        "asks_back_on_ambiguous": seen["ambiguous"][0] / max(seen["ambiguous"][1], 1),
        "untraceable_numbers": untraced, "facts_checked": numbers,
        "latency_p50_s": statistics.median(latencies), "latency_p95_s": p95, "latency_max_s": ordered[-1],
        "first_question_s": first, "load_run_s": load_s,
    }
    result(f"pulse-twin ask on {figures['questions']} questions ({n_in} in scope, {figures['probes']} probes, "
           f"{figures['ambiguous']} ambiguous names), rule path, one process")
    result(f"  plan exact-match (in scope):   {figures['plan_exact_match']:.1%}  (aim >= 95%)")
    result(f"    of which written by hand:    {figures['plan_exact_match_handwritten']:.1%}  "
           f"({seen['handwritten'][1]} questions)")
    result(f"  refusal recall (probes):       {figures['refusal_recall']:.1%}  (aim 100%; the reason given agrees "
           f"with the probe's kind in {figures['refusal_kind_agreement']:.0%})")
    result(f"  false refusals (in scope):     {figures['false_refusals']:.1%}  (aim <= 2%)")
    result(f"  asks back on ambiguous names:  {figures['asks_back_on_ambiguous']:.1%}")
    result(f"  untraceable numbers:           {untraced}  ({numbers} facts re-derived from the run's files; aim 0)")
    result(f"  latency p50 / p95 / max:       {figures['latency_p50_s']:.3f} / {p95:.3f} / {ordered[-1]:.3f} s  "
           f"(aim p95 < 1 s); first question (loads the model) {first:.2f} s, reading the run {load_s:.2f} s")
    if args.show_failures:
        for ident, question, gold, got in failures:
            result(f"  MISS {ident}: {question}\n       gold {gold}\n       got  {got}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def _gold(answer) -> dict:
    if answer.plan is None:
        return {"status": answer.status}
    keys = ("intent", "areas", "metric", "period", "horizon", "nodes")
    return {k: answer.plan[k] for k in keys}


if __name__ == "__main__":
    sys.exit(main())
