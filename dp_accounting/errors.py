"""User-facing errors: one clear message, no traceback.

Every mistake a user can make (bad input file, bad config, a refused release) raises a subclass of
`PulseTwinError`; the CLI prints its message and exits with `exit_code`. Anything else is a bug. The
classes live here because the ledger, at the bottom of the imports, raises them too; `federation.errors`
is where every other package takes them from.
"""
from __future__ import annotations


class PulseTwinError(Exception):
    """A problem the user can fix; the message says what and where."""

    exit_code = 2


class ConfigError(PulseTwinError):
    """A configuration file or command-line value is missing or invalid."""


class PolicyRefusal(PulseTwinError):
    """The node's site policy refuses an action; the message names the rule."""

    exit_code = 3


class BudgetExceeded(PolicyRefusal):
    """A release would take the node's epsilon past its cap."""
