"""The Social Digital Twin's view of a finished run: `pulse-twin report RUN_DIR`.

Everything here is post-processing of what a run already released (predictions, held-out predictions,
the nodes' own privacy reports, the released model): it charges no budget and reads no raw record.
One module per role: `inputs` (reading the run), `intervals`, `drivers`, `fairness`, `mia`, `receipt`,
`card`, `gate`, `figures`, `html`, and `build` which puts them together.
"""
