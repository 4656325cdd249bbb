"""Run a kernel script under Kaggle's real `kaggle_evaluation`, recording each relay call.

Usage (by the official gateway run): python launcher.py CALL_LOG KERNEL_SCRIPT. The script runs
as `python KERNEL_SCRIPT` would run it (its own __main__, sys.argv and sys.path[0]). Kaggle's
`Client.send` is wrapped to write one JSON line before each call and one after each answer
(seconds, the kit's warnings on that answer); the answer itself is passed on unchanged.
"""

import json
import os
import runpy
import sys
import time

STARTED = time.monotonic()  # the script's start, as near as the launcher can see it


def _kit_checks():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if root not in sys.path:
        sys.path.append(root)
    from offline.gateway.kaggle_evaluation.mitsui_gateway import expected_target_columns, kit_warnings

    return expected_target_columns, kit_warnings


def _date_id(args) -> int | None:
    try:
        return int(args[0]["date_id"][0])
    except Exception:
        return None


def main() -> None:
    log_path, script = sys.argv[1], os.path.abspath(sys.argv[2])
    sys.path[0] = os.path.dirname(script)  # not this directory: it holds the kit's emulator
    import kaggle_evaluation.core.relay as relay  # Kaggle's, from the data directory on PYTHONPATH

    expected_columns, warnings_of = _kit_checks()
    original = relay.Client.send
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open for the whole run

    def send(self, name, *args, **kwargs):
        date_id = _date_id(args)
        since = time.monotonic() - STARTED
        log.write(json.dumps({"event": "sent", "date_id": date_id, "since_start_s": since}) + "\n")
        start = time.perf_counter()
        answer = original(self, name, *args, **kwargs)
        seconds = time.perf_counter() - start
        try:
            found = warnings_of(answer, expected_columns(args)) if len(answer) == 1 else []
        except Exception:
            found = []  # not a frame: Kaggle's own validation reports it
        event = {"event": "answered", "date_id": date_id, "seconds": seconds, "warnings": found}
        log.write(json.dumps(event) + "\n")
        return answer

    relay.Client.send = send
    sys.argv = [script, *sys.argv[3:]]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
