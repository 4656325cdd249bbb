"""Errors the CLI prints as one clear line (no traceback): bad input named by file, column and row."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input or environment."""


class DataError(UserError):
    """Bad competition data. The message names the file and, where known, the column and row."""

    def __init__(self, file: str, message: str, column: str | None = None, row: int | None = None):
        self.file, self.column, self.row = file, column, row
        where = file
        if column is not None:
            where += f", column {column!r}"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {message}")
