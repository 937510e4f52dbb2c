"""Seeded synthetic raw records for every node, calibrated to CBS figures for Heerlen.

One latent liveability process per area and month (five Leefbaarometer dimensions) drives all tables;
each partner's tables see different dimensions, each with its own noise. Entry point: `generate`.
"""
__all__ = ["GenerationSummary", "TableSummary", "generate"]


def __getattr__(name: str):
    """The generator is imported when first used, not by `pulse-twin --help` (it pulls in pandas)."""
    if name in __all__:
        from devtools.synthetic import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'devtools.synthetic' has no attribute '{name}'")
