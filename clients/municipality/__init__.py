"""Municipality node: register aggregates, benefit cases, public-space reports and the resident survey -> `context`, `social` and the liveability label."""
