"""Benchmarks of the inference kernel against a naive pandas + LightGBM kernel (`make bench`)."""
