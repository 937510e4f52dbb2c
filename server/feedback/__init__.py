"""Public feedback to residents: what their reports showed (DP releases), what the city did (its action log),
and where few reports must not be read as few problems (the under-reporting indicator). Post-processing of a
run's artefacts only: nothing here reads a node's raw records or costs privacy."""
