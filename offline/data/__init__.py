"""Competition directory I/O: loading and validation, the exact targets, label verification, synthetic data."""
