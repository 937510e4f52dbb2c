"""Police node: incident registrations -> the `safety` block."""
