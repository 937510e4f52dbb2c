"""The node's privacy ledger: releases, accountants, budgets and guarantees in words."""
from dp_accounting.accountants import Accountant, PRVAccountant, RDPAccountant, compress, get_accountant
from dp_accounting.budget import BudgetCaps, Projection
from dp_accounting.calibrate import noise_multiplier
from dp_accounting.ledger import Fact, PrivacyLedger, ledger_path
from dp_accounting.release import DEFAULT_UNIT, MECHANISMS, Release
from dp_accounting.report import GroupGuarantee, PrivacyReport, group_privacy, privacy_report

__all__ = [
    "Accountant",
    "BudgetCaps",
    "DEFAULT_UNIT",
    "Fact",
    "GroupGuarantee",
    "MECHANISMS",
    "PRVAccountant",
    "PrivacyLedger",
    "PrivacyReport",
    "Projection",
    "RDPAccountant",
    "Release",
    "compress",
    "get_accountant",
    "group_privacy",
    "ledger_path",
    "noise_multiplier",
    "privacy_report",
]
