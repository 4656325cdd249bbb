"""Lean inference runtime for the MITSUI&CO. Commodity Prediction Challenge (polars + numpy + stdlib)."""

__version__ = "0.1.0"
