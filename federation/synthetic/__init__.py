"""Seeded synthetic raw records for every node, calibrated to CBS figures for Heerlen.

One latent liveability process per area and month (five Leefbaarometer dimensions) drives all tables;
each partner's tables see different dimensions, each with its own noise. Entry point: `generate`.
"""
from federation.synthetic.generator import GenerationSummary, TableSummary, generate

__all__ = ["GenerationSummary", "TableSummary", "generate"]
