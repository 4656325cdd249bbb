"""The kernel script as a child process: its output streamed to the console and a log file.

The child runs in its own session so that a limit breach can end it and anything it started
(its process group), and nothing else. The last stderr lines are kept for failure reports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import IO


class KernelProcess:
    """`python KERNEL` in `cwd` with `env`; stdout and stderr go to `log_path` and (if echo) our stderr.

    `launcher=(script, log)` runs `python launcher log KERNEL` instead (the official gateway's call log).
    """

    def __init__(
        self,
        script: Path,
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        echo: bool = True,
        python: str | None = None,
        launcher: tuple[Path, Path] | None = None,
    ):
        self.log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in wait()/kill()
        self.echo = echo
        self.tail: deque[str] = deque(maxlen=20)
        self._lock = threading.Lock()
        head = [str(launcher[0]), str(launcher[1])] if launcher else []
        self.proc = subprocess.Popen(
            [python or sys.executable, "-u", *head, str(script)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, False), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, True), daemon=True),
        ]
        for t in self._pumps:
            t.start()

    def _pump(self, stream: IO[str], is_err: bool) -> None:
        for line in stream:
            with self._lock:
                if self.log.closed:
                    return
                self.log.write(line)
                self.log.flush()
                if is_err:
                    self.tail.append(line.rstrip("\n"))
                if self.echo:
                    sys.stderr.write(f"[kernel] {line}")
                    sys.stderr.flush()

    def poll(self) -> int | None:
        return self.proc.poll()

    def stderr_tail(self, n: int = 12) -> str:
        self._drain(1.0)
        with self._lock:
            return "\n".join(list(self.tail)[-n:])

    def _drain(self, timeout: float) -> None:
        if self.proc.poll() is not None:
            for t in self._pumps:
                t.join(timeout)

    def wait(self, timeout: float) -> int | None:
        """Wait for a normal exit; kill it if it does not exit in time. Returns the exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close()
        return self.proc.returncode

    def kill(self) -> None:
        """End the kernel's process group (only processes the kernel started)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        self._drain(2.0)
        with self._lock:
            if not self.log.closed:
                self.log.close()
