"""Partner nodes: each partner's raw-data readers, feature builders and ClientApp role."""
