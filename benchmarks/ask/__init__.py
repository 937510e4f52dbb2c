"""The twin colleague's benchmark (`python -m benchmarks.ask`): a frozen evaluation set of questions and
probes (`questions.json`, made by `make_questions.py`), a small run directory to answer from (`fixture.py`),
and the figures: plan exact-match, refusal recall, false refusals, untraceable numbers, latency."""
