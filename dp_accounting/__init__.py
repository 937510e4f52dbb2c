"""The node's privacy ledger: releases, accountants, budgets and guarantees in words."""
