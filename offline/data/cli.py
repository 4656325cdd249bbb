"""`python -m offline data ...`: verify a competition directory, synthesise the default one."""

from __future__ import annotations

import argparse
import json
import sys


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

    cfg = SynthConfig(days=args.days, test_days=args.test_days, seed=args.seed, profile=args.profile)
    write_synthetic(args.out, cfg)
    print(
        f"wrote synthetic competition directory {args.out} "
        f"(profile {args.profile}, {args.days} days, seed {args.seed})"
    )
    return 0


def _yardstick(args: argparse.Namespace) -> int:
    from offline.data.synthetic.yardstick import YARDSTICK_FILE, write_yardstick

    y = write_yardstick(args.dir)
    print(
        f"{args.dir} (profile {y.profile}, seed {y.seed}), {y.blend_days} blend days of {y.n_days}: "
        f"oracle {y.oracle:.3f} (factor-neutral {y.oracle_neutral:.3f})  "
        f"informed ridge yardstick {y.yardstick:.3f} (factor-neutral {y.yardstick_neutral:.3f})  "
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
    s.set_defaults(func=_synth)

    y = dsub.add_parser(
        "yardstick",
        help="score a synthetic directory's oracle, informed ridge yardstick and baselines on the "
        "engine's blend days -> yardstick.json",
    )
    y.add_argument("dir", help="directory written by `data synth`")
    y.set_defaults(func=_yardstick)
