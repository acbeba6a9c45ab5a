"""cartkg: a knowledge graph of CAR-T cell-therapy clinical trials."""

__version__ = "0.1.0"
