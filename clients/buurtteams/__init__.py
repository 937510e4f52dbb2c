"""Buurtteams node: social-care case records -> the `care` block."""
