"""Kaggle's own `kaggle_evaluation` (from a real download) run as the kernel's local gateway.

The kernel script runs under `launcher.py`, which only observes Kaggle's relay client (the time
of each call, the kit's warnings on each answer, one JSON line per event); Kaggle's code on disk
and its behaviour are untouched. Kaggle's client always tries ports 50051 and 60053-60062, so two
official runs on one machine could reach each other's servers: a machine-wide lock runs them one
at a time, and a port held by anything else stops the run with its number.
"""

from __future__ import annotations

import ast
import fcntl
import json
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from offline.errors import UserError

LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
# the ports Kaggle's relay client and server use (kaggle_evaluation/core/relay.py, GRPC_PORTS)
KAGGLE_PORTS = (50051, *range(60053, 60063))
LOCK_FILE = Path(tempfile.gettempdir()) / "mitsui-kit-official-gateway.lock"
_ERROR = re.compile(r"GatewayRuntimeError: \(<GatewayRuntimeErrorType\.(\w+): \d+>, (.*)\)\s*$")


@dataclass
class CallLog:
    """What the launcher saw: answered date_ids with seconds, warnings, the date_id left unanswered."""

    answered: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    warnings: list[tuple[int, str, str]] = field(default_factory=list)
    pending: int | None = None
    first_call_s: float | None = None  # script start to the first batch sent: the server is up

    @classmethod
    def read(cls, path: Path) -> CallLog:
        log = cls()
        if not path.exists():
            return log
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if event["event"] == "sent":
                log.pending = event["date_id"]
                if log.first_call_s is None:
                    log.first_call_s = event.get("since_start_s")
            else:
                log.answered.append(event["date_id"])
                log.seconds.append(event["seconds"])
                log.warnings += [(event["date_id"], k, m) for k, m in event["warnings"]]
                log.pending = None
        return log


def kaggle_error(log_text: str) -> tuple[str, str] | None:
    """(Kaggle's error name, its detail) from the GatewayRuntimeError at the end of a kernel's output."""
    for line in reversed(log_text.splitlines()):
        found = _ERROR.search(line)
        if found:
            try:
                detail = ast.literal_eval(found.group(2))
            except (ValueError, SyntaxError):
                detail = found.group(2)
            return found.group(1), "" if detail is None else str(detail)
    return None


def busy_ports() -> list[int]:
    """Kaggle's ports on which a server on this machine accepts connections: what Kaggle's client
    would reach. A client socket that happens to use one as its ephemeral local port (or one in
    TIME_WAIT) accepts nothing, so it does not count."""
    busy = []
    for port in KAGGLE_PORTS:
        try:
            socket.create_connection(("localhost", port), timeout=0.5).close()
        except OSError:
            continue
        busy.append(port)
    return busy


@contextmanager
def exclusive_ports(echo: bool = True) -> Iterator[None]:
    """Hold the machine-wide lock for Kaggle's ports; refuse when another program holds them."""
    with open(LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if echo:
                print(f"gateway: waiting for another official run to finish ({LOCK_FILE})", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        busy = busy_ports()
        if busy:
            raise UserError(
                f"port(s) {', '.join(map(str, busy))} are in use on this machine; Kaggle's client tries "
                f"{KAGGLE_PORTS[0]} and {KAGGLE_PORTS[1]}-{KAGGLE_PORTS[-1]} and would reach that program's "
                f"server instead of the kernel's. Stop it and run again."
            )
        yield  # the caller ends the kernel's process group before the lock is released
