"""User-facing errors of every package: one clear message, no traceback (see dp_accounting/errors.py)."""
from __future__ import annotations

from dp_accounting.errors import BudgetExceeded, ConfigError, PolicyRefusal, PulseTwinError

__all__ = ["BudgetExceeded", "ConfigError", "ContractError", "PolicyRefusal", "PulseTwinError"]


class ContractError(PulseTwinError):
    """Raw input or a data contract breaks the contract (names file, row and column)."""
