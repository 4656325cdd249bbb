"""`python -m offline data ...`: verify a competition directory, synthesise the default one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from offline.errors import UserError


def _verify(args: argparse.Namespace) -> int:
    from offline.data.competition import load_competition
    from offline.data.verify import verify

    result = verify(load_competition(args.dir, require_legs=False))  # the same rule as training
    if result["missing_legs"]:
        print(
            f"warning: pair leg(s) {', '.join(result['missing_legs'])} are not price columns: their targets' "
            "labels cannot be recomputed, and training falls back to a baseline for them",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result))
    else:
        for name, c in result["files"].items():
            print(
                f"{name:42s} compared {c['compared']:>9,}  mismatched {c['mismatched']:>6,}  "
                f"max_abs_error {c['max_abs_error']:.2e}  undetermined {c['undetermined']:,}"
            )
        for w in result["worst"]:
            print(
                f"  mismatch {w['file']} date {w['date_id']} {w['target']}: "
                f"published {w['published']:.8g} recomputed {w['recomputed']:.8g}",
                file=sys.stderr,
            )
        if result["compared"] == 0:
            print(
                f"NOTHING VERIFIED: {args.dir} has no published label that its prices determine "
                "(train_labels.csv or lagged_test_labels/ with prices for their days)"
            )
            return 1
        verdict = "OK" if result["ok"] else "MISMATCH"
        print(
            f"{verdict}: {result['compared']:,} labels compared, {result['mismatched']:,} mismatched, "
            f"max abs error {result['max_abs_error']:.2e}"
        )
    return 0 if result["ok"] else 1


def _synth(args: argparse.Namespace) -> int:
    from offline.data.synthetic import SynthConfig, write_synthetic

    cfg = SynthConfig(
        days=args.days,
        test_days=args.test_days,
        seed=args.seed,
        strength=args.strength,
        profile=args.profile,
        effects=read_effects(args.effects) if args.effects else {},
    )
    write_synthetic(args.out, cfg)
    mix = _mix(args.profile, cfg.effects)
    print(f"wrote synthetic competition directory {args.out} ({mix}, {args.days} days, seed {args.seed})")
    return 0


def _mix(profile: str, effects: dict | None) -> str:
    """How a synthetic market's effect mix is named in console lines."""
    return f"profile {profile}" + (f" with {json.dumps(effects)}" if effects else "")


def read_effects(text: str) -> dict:
    """`--effects`: a JSON object inline, or the path of a .json file holding one."""
    source = "--effects"
    if Path(text).is_file():
        source, text = text, Path(text).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if source == "--effects" and not text.lstrip().startswith(("{", "[")):
            raise UserError(f"--effects: {text!r} is neither a JSON object nor a file") from None
        raise UserError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UserError(f"{source}: expected a JSON object of effect: value, got {type(value).__name__}")
    return value


def _yardstick(args: argparse.Namespace) -> int:
    from offline.data.synthetic import TRUTH_FILE
    from offline.data.synthetic.yardstick import YARDSTICK_FILE, write_yardstick

    y = write_yardstick(args.dir)
    effects = json.loads((Path(args.dir) / TRUTH_FILE).read_text())["config"].get("effects")
    mix = _mix(y.profile, effects)
    print(
        f"{args.dir} ({mix}, seed {y.seed}), {y.blend_days} blend days of {y.n_days}: "
        f"oracle {y.oracle:.3f} (after the blend's rule {y.oracle_neutral:.3f})  "
        f"informed ridge yardstick {y.yardstick:.3f} (after the blend's rule {y.yardstick_neutral:.3f})  "
        f"mean-rank prior {y.mean_rank:.3f}  naive {y.naive:.3f}  -> {YARDSTICK_FILE}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="competition data: verify labels, synthesise the default set")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    v = dsub.add_parser("verify", help="recompute every label the prices determine and compare")
    v.add_argument("dir", help="competition directory (Kaggle layout)")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.set_defaults(func=_verify)

    s = dsub.add_parser("synth", help="write a synthetic competition directory (the built-in default)")
    s.add_argument("out", help="output directory")
    s.add_argument("--days", type=int, default=1961, help="trading days in train.csv (default 1961)")
    s.add_argument("--test-days", type=int, default=134, help="days in test.csv (default 134)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument(
        "--profile",
        default="default",
        help="named market, an effect mix of offline/data/synthetic/profiles.py (an unknown name lists them)",
    )
    s.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="multiplier on every planted coefficient, 0..3 (default 1)",
    )
    s.add_argument(
        "--effects",
        help="a mix of your own: JSON object (or .json file) replacing some of the profile's coefficients, "
        'windows and delays, e.g. \'{"reversal": -0.5, "momentum_window": 42}\' (an unknown name lists them)',
    )
    s.set_defaults(func=_synth)

    y = dsub.add_parser(
        "yardstick",
        help="score a synthetic directory's oracle, informed ridge yardstick and baselines on the "
        "engine's blend days -> yardstick.json",
    )
    y.add_argument("dir", help="directory written by `data synth`")
    y.set_defaults(func=_yardstick)
