"""The coordinator: ServerApps, strategies, the vertical fusion head, run records and reports."""
