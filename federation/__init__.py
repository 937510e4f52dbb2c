"""PULSE-TWIN shared contracts: keys, data contracts, the block model, messages, PSI, egress guard, CLI."""
