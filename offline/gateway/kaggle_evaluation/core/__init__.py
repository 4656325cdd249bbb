"""Internals: the error types Kaggle's gateway reports and the socket relay between the processes."""
