"""The error kinds Kaggle's gateway reports (same names), carried with a human-readable detail."""

from __future__ import annotations

import enum


class GatewayRuntimeErrorType(enum.Enum):
    """Kaggle's allow-listed failure kinds; the name is what a failed submission shows."""

    UNSPECIFIED = 0
    SERVER_NEVER_STARTED = 1
    SERVER_CONNECTION_FAILED = 2
    SERVER_RAISED_EXCEPTION = 3
    SERVER_MISSING_ENDPOINT = 4
    GATEWAY_RAISED_EXCEPTION = 5
    INVALID_SUBMISSION = 6
    GRPC_DEADLINE_EXCEEDED = 7


class GatewayRuntimeError(Exception):
    """A failed run: `error_type` as Kaggle names it, `error_details` says what happened."""

    def __init__(self, error_type: GatewayRuntimeErrorType, error_details: str | None = None):
        self.error_type = error_type
        self.error_details = error_details
        super().__init__(f"{error_type.name}: {error_details}" if error_details else error_type.name)
