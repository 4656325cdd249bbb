"""Offline side of the kit: data, training, ETF pipeline, gateway, packaging and submission."""

__version__ = "0.1.0"
