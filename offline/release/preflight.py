"""`make preflight`: will these artifacts work on Kaggle, and is the local score honest? One screen.

Checks, each PASS / WARN / FAIL (exit 1 on any FAIL): the models were trained on real competition
data (the manifest records the origin; the synthetic market is refused, naming the training
directory); whether training overlaps the public window (then every local score there is
in-sample and the OOF score is the honest figure); the kernel imports only the standard library,
polars and numpy, at Kaggle's versions; every manifest hash; metadata private, internet and GPU
off, the competition attached; Kaggle's real package passes the public window in .venv-kaggle;
the forecasting-phase soak passes.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kaggle_kernel.artifacts import check_artifacts
from kaggle_kernel.manifest import ORIGIN_COMPETITION, Manifest
from offline.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
KAGGLE_CONSTRAINTS = ROOT / "constraints-kaggle.txt"
PUBLIC_WINDOW = (1827, 1960)  # the public phase's test days (test.csv of the competition download)
KERNEL_LIBRARIES = {"polars", "numpy", "kaggle_kernel", "kaggle_evaluation"}
COMPETITION = "mitsui-commodity-prediction-challenge"


@dataclass(frozen=True)
class Check:
    status: str  # PASS, WARN or FAIL
    name: str
    detail: str


def kaggle_pins() -> dict[str, str]:
    """package -> version from constraints-kaggle.txt (Kaggle's image)."""
    pins = {}
    for line in KAGGLE_CONSTRAINTS.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def check_origin(manifest: Manifest) -> Check:
    t = manifest.training
    where = t.data.get("dir", "?")
    if t.origin == ORIGIN_COMPETITION:
        return Check("PASS", "training data", f"real competition data ({where})")
    return Check(
        "FAIL",
        "training data",
        f"trained on {t.origin} data in {where}: models of the built-in synthetic market know nothing of "
        f"the real one. Train on the competition download (make download; make train DATA=data/mitsui)",
    )


def check_in_sample(manifest: Manifest) -> Check:
    first, last, oof = (
        manifest.training.first_date_id,
        manifest.training.last_date_id,
        manifest.training.oof_score,
    )
    lo, hi = PUBLIC_WINDOW
    if first is None or last is None:
        return Check("WARN", "in-sample", "the manifest does not record the training days")
    overlap = max(0, min(last, hi) - max(first, lo) + 1)
    honest = "n/a" if oof is None else f"{oof:.4f}"
    if overlap:
        return Check(
            "WARN",
            "in-sample",
            f"training covers date_id {first}..{last}, {overlap} of the public window's days "
            f"{lo}..{hi}: every local gateway score there is in-sample; honest figure: OOF {honest}",
        )
    return Check(
        "PASS", "in-sample", f"training ends at date_id {last}, before the public window (OOF {honest})"
    )


def kernel_imports(kernel_dir: Path) -> set[str]:
    """Top-level modules the kernel's files import (absolute imports only)."""
    found = set()
    for f in sorted(kernel_dir.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def check_imports(artifacts: Path, environment: dict) -> Check:
    extra = sorted(
        kernel_imports(artifacts / "kaggle_kernel") - KERNEL_LIBRARIES - set(sys.stdlib_module_names)
    )
    if extra:
        return Check(
            "FAIL", "kernel imports", f"kaggle_kernel imports {', '.join(extra)}: not on Kaggle's image"
        )
    pins = kaggle_pins()
    wrong = [
        f"{lib} {environment.get(lib)} (Kaggle {pins[lib]})"
        for lib in ("polars", "numpy")
        if environment.get(lib) != pins[lib]
    ]
    if wrong:
        return Check("FAIL", "kernel imports", f"the kernel's python has {', '.join(wrong)}")
    return Check(
        "PASS",
        "kernel imports",
        f"stdlib, polars {environment['polars']}, numpy {environment['numpy']} (Kaggle's versions)",
    )


def check_hashes(artifacts: Path) -> Check:
    manifest, problems = check_artifacts(artifacts)
    if problems:
        name, problem = next(iter(problems.items()))
        return Check(
            "FAIL", "hashes", f"{len(problems)} problem(s), first {name}: {problem}; run make package"
        )
    return Check("PASS", "hashes", f"{len(manifest.files)} files match manifest.json")


def check_metadata(artifacts: Path, kernel_metadata: Path) -> Check:
    try:
        dataset = json.loads((artifacts / "dataset-metadata.json").read_text())
        kernel = json.loads(kernel_metadata.read_text())
    except (OSError, ValueError) as exc:
        return Check("FAIL", "metadata", f"cannot read the metadata: {exc}")
    wrong = []
    if dataset.get("isPrivate") is not True:
        wrong.append("dataset-metadata.json isPrivate is not true")
    for key, want in (("is_private", True), ("enable_internet", False), ("enable_gpu", False)):
        if kernel.get(key) is not want:
            wrong.append(f"{kernel_metadata.name} {key} is {kernel.get(key)!s}, not {want!s}")
    if COMPETITION not in kernel.get("competition_sources", []):
        wrong.append(f"{kernel_metadata.name} does not attach {COMPETITION}")
    if wrong:
        return Check("FAIL", "metadata", "; ".join(wrong))
    return Check(
        "PASS", "metadata", "dataset and kernel private, internet off, GPU off, competition attached"
    )


def check_real_package(artifacts: Path, public: Path, python: str) -> Check:
    from offline.gateway.runner import run_gateway

    if not (public / "kaggle_evaluation").is_dir():
        return Check("FAIL", "Kaggle's package", f"{public} has no kaggle_evaluation/ (pass PUBLIC=dir)")
    with tempfile.TemporaryDirectory(prefix="kit-preflight-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(public, data, ignore=shutil.ignore_patterns("__pycache__"))
        for f in data.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o644)
        kernel = ROOT / "kaggle_kernel" / "submission.py"
        report = run_gateway(
            data,
            kernel,
            Path(tmp) / "run" / "report.json",
            echo=False,
            python=python,
            official=True,
            artifacts=artifacts,
        )
    if not report["ok"]:
        failure = report["failure"]
        return Check("FAIL", "Kaggle's package", f"{failure['kind']}: {failure['message'].splitlines()[0]}")
    return Check(
        "PASS",
        "Kaggle's package",
        f"{report['n_days']}/{report['n_test_days']} days, no errors, score {report['score']:.4f} "
        f"(polars {report['environment']['polars']})",
    )


def check_soak(artifacts: Path, python: str, days: int) -> Check:
    from offline.release.soak import run_soak

    r = run_soak(artifacts, days, python)
    detail = (
        f"{r.days} days, memory +{r.rss_growth_mb:.1f} MB, CPU p99 {r.cpu_p99_first_ms:.1f} -> {r.cpu_p99_last_ms:.1f} ms "
        f"(wall {r.p99_first_ms:.1f} -> {r.p99_last_ms:.1f}), "
        f"{r.errors} errors, {r.bad_rows} bad rows"
    )
    return Check(
        "FAIL" if r.failures else "PASS",
        "soak",
        detail + ("; " + "; ".join(r.failures) if r.failures else ""),
    )


def _guarded(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except UserError as exc:
        return Check("FAIL", name, str(exc))


def preflight(
    artifacts: Path, public: Path, python: str, kernel_metadata: Path, soak_days: int
) -> list[Check]:
    """Every check, in order; a missing or unreadable manifest stops after the first."""
    from offline.gateway.runner import kernel_environment

    manifest, problems = check_artifacts(artifacts)
    if manifest is None:
        listed = "; ".join(f"{name}: {problem}" for name, problem in sorted(problems.items()))
        return [Check("FAIL", "manifest", f"{artifacts}: {listed}; run make package")]
    environment = kernel_environment(python)
    return [
        check_origin(manifest),
        check_in_sample(manifest),
        check_imports(artifacts, environment),
        check_hashes(artifacts),
        check_metadata(artifacts, kernel_metadata),
        _guarded("Kaggle's package", lambda: check_real_package(artifacts, public, python)),
        _guarded("soak", lambda: check_soak(artifacts, python, soak_days)),
    ]


def format_checks(checks: list[Check], artifacts: Path) -> str:
    lines = [f"preflight {artifacts}"]
    lines += [f"  [{c.status}] {c.name}: {c.detail}" for c in checks]
    failed = [c.name for c in checks if c.status == "FAIL"]
    lines.append(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "all checks passed")
    return "\n".join(lines)


def _preflight(args: argparse.Namespace) -> int:
    artifacts = Path(args.artifacts).resolve()
    checks = preflight(
        artifacts,
        Path(args.public),
        args.python or sys.executable,
        Path(args.kernel_metadata),
        args.soak_days,
    )
    print(format_checks(checks, artifacts))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preflight", help="one-screen checklist before make submit (exit 1 on any failure)")
    p.add_argument("--artifacts", default="artifacts", help="artifacts directory (default artifacts)")
    p.add_argument(
        "--public",
        default=str(ROOT.parent / "shared" / "mitsui-public"),
        help="the public window with Kaggle's kaggle_evaluation/ (a competition download)",
    )
    p.add_argument("--python", default=None, help="the kernel's interpreter (make preflight: .venv-kaggle)")
    p.add_argument("--kernel-metadata", default="kernel-metadata.json", help="kernel metadata template")
    p.add_argument("--soak-days", type=int, default=1000, help="days the soak serves (default 1000)")
    p.set_defaults(func=_preflight)
