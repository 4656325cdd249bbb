"""`python -m offline <command>`: one argparse tree; each area adds its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from offline.errors import UserError

# Modules that expose `register(subparsers)`; each sets `func` on its parsers.
COMMAND_MODULES = (
    "offline.data.cli",
    "offline.gateway.cli",
    "offline.train.cli",
    "offline.etf.cli",
    "offline.release.package",
    "offline.release.submit",
    "offline.release.preflight",
    "offline.release.soak",
    "offline.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m offline",
        description="MITSUI&CO. Commodity Prediction Challenge kit: data, training, gateway, packaging.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # area not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(rc or 0)
