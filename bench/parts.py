"""CPU time per served day, split by part, of this kernel and of a baseline revision, side by side.

    python -m bench.parts --artifacts A --data D [--baseline REV] [--days N]

The baseline's kaggle_kernel (`git archive REV`) is imported under another package name, so both
kernels serve the same days in one process, alternating which goes first. Times are process CPU
time (time.process_time), which other jobs on a shared machine disturb far less than wall time.
Parts are inclusive (features contains its sub-steps); their predictions must agree.
"""

from __future__ import annotations

import argparse
import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASE_PACKAGE = "kaggle_kernel_base"
# (module, attribute) timed when present; a class attribute is "Class.method"
PARTS = (
    ("predictor", "Predictor.predict"),
    ("predictor", "Predictor._update"),
    ("predictor", "Predictor._features"),
    ("features", "price_panel"),
    ("features", "label_panel"),
    ("features", "instrument_features"),
    ("features", "_rolling_at"),
    ("features", "regime_features"),
    ("features", "_regime_at"),
    ("features", "own_labels"),
    ("features", "_prior_at"),
    ("features", "feature_matrix"),
    ("predictor", "Predictor._stage1"),
    ("forest", "Forest.predict"),
    ("blend", "Blend.predict"),
    ("predictor", "Predictor._output"),
)


def load_baseline(rev: str, into: Path) -> str:
    """Extract kaggle_kernel at `rev` into `into` as package BASE_PACKAGE; return its name."""
    tar = subprocess.run(
        ["git", "archive", rev, "kaggle_kernel"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    src = into / "kaggle_kernel"
    for f in src.glob("*.py"):
        f.write_text(f.read_text().replace("kaggle_kernel", BASE_PACKAGE))
    src.rename(into / BASE_PACKAGE)
    sys.path.insert(0, str(into))
    return BASE_PACKAGE


def instrument(package: str, totals: dict[str, float]) -> None:
    """Wrap each PART of `package` so that its CPU time adds to totals[part] (every reference to it)."""
    for mod_name, attr in PARTS:
        mod = importlib.import_module(f"{package}.{mod_name}")
        owner_name, _, name = attr.rpartition(".")
        owner = getattr(mod, owner_name) if owner_name else mod
        fn = getattr(owner, name, None)
        if fn is None:
            continue

        def timed(*args, _fn=fn, _key=attr, **kwargs):
            t = time.process_time()
            try:
                return _fn(*args, **kwargs)
            finally:
                totals[_key] += time.process_time() - t

        setattr(owner, name, timed)
        if not owner_name:  # modules that imported the function by name call their own reference
            for other in list(sys.modules.values()):
                if getattr(other, "__name__", "").startswith(package) and getattr(other, name, None) is fn:
                    setattr(other, name, timed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.parts", description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", required=True)
    p.add_argument("--data", required=True, help="competition directory with test.csv")
    p.add_argument("--baseline", help="git revision whose kernel runs alongside (default: none)")
    p.add_argument("--days", type=int)
    args = p.parse_args(argv)
    from bench.run import load_days

    days = load_days(Path(args.data), args.days)
    packages = ["kaggle_kernel"]
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            packages.append(load_baseline(args.baseline, Path(tmp)))
        totals = {pkg: defaultdict(float) for pkg in packages}
        kernels = {}
        for pkg in packages:
            instrument(pkg, totals[pkg])
            kernels[pkg] = importlib.import_module(f"{pkg}.predictor").Predictor.from_artifacts(
                args.artifacts
            )
        for pkg in packages:
            totals[pkg].clear()  # loading is not serving
        worst = 0.0
        for i, (batch, _) in enumerate(days):
            outs = {pkg: kernels[pkg].predict(*batch).to_numpy()[0] for pkg in packages[:: 1 - 2 * (i % 2)]}
            worst = max(worst, float(np.max(np.abs(outs[packages[0]] - outs[packages[-1]]))))
    n = len(days)
    print(f"CPU ms per day over {n} days ({args.artifacts} on {args.data}); inclusive parts")
    print(f"{'part':<30}" + "".join(f"{pkg:>20}" for pkg in packages))
    for _, attr in PARTS:
        if any(attr in totals[pkg] for pkg in packages):
            print(
                f"{attr:<30}" + "".join(f"{1e3 * totals[pkg].get(attr, 0.0) / n:>20.2f}" for pkg in packages)
            )
    errors = {pkg: int(sum(kernels[pkg].errors.values())) for pkg in packages}
    print(f"fallbacks {errors}; max |prediction difference| {worst:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
