"""Development tools of PULSE-TWIN: the synthetic-data generator and its city profiles, the yardstick, the
one-machine launcher behind `pulse-twin federate` and `make demo`, and the in-process grid for tests.

They sit outside the app bundle that nodes approve (see federation/bundle.py): editing them never asks a
site to approve again. Only the `pulse-twin` CLI and other development tools import them.
"""
