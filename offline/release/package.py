"""`make package`: trained models -> artifacts/, the Kaggle dataset the kernel loads.

artifacts/
  forest.npz              every tree of every model, packed for kaggle_kernel.forest
  crash.npz, crash.json   the ETF crash model and its inputs, when the regressors use its probability
  models/*.txt.gz         the LightGBM text models, gzipped (provenance)
  kaggle_kernel/          the runtime the dataset was built with
  snapshot/*.parquet      the tail of the price and label history, to bootstrap the kernel
  manifest.json           files + SHA-256, versions, features per model, data fingerprint, CV scores
  dataset-metadata.json   Kaggle dataset metadata (private)

Two builds from the same models are byte-identical: no timestamps, sorted keys, fixed zip dates.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import kaggle_kernel
from kaggle_kernel.artifacts import MANIFEST, sha256_file
from kaggle_kernel.blend import PER_TARGET
from kaggle_kernel.crash import CRASH_WINDOW, CrashModel
from kaggle_kernel.features import BOOTSTRAP_DAYS, REPLAY_DAYS, FeatureSpec
from kaggle_kernel.local import LocalLinear
from kaggle_kernel.manifest import (
    ORIGIN_COMPETITION,
    ORIGIN_SYNTHETIC,
    ORIGIN_UNKNOWN,
    FileEntry,
    Manifest,
    Training,
)
from kaggle_kernel.state import HISTORY_MARGIN
from offline.errors import UserError
from offline.release.credentials import kaggle_username
from offline.release.forest_export import pack_forest, save_forest, write_npz
from offline.train.run_files import MODELS_FILE, ModelsFile

DATASET_SLUG = "mitsui-kit-artifacts"
SYNTHETIC_MARKER = "synthetic_truth.json"  # every directory the synthetic market writes has it
KERNEL_DIR = Path(kaggle_kernel.__file__).parent


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict:
    out = {}
    for lib in ("polars", "numpy", "lightgbm", "scikit-learn"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def _read_models(models_dir: Path) -> ModelsFile:
    path = models_dir / MODELS_FILE
    if not path.exists():
        raise UserError(f"{path} not found: run `make train` first (or pass MODELS=dir of a training run)")
    return ModelsFile.load(models_dir)


def _snapshot(
    data_dir: Path, spec: FeatureSpec, out: Path, until: int | None, crash: CrashModel | None
) -> dict:
    from offline.data.competition import load_competition
    from offline.train.dataset import training_frames

    comp = load_competition(data_dir, require_legs=False)
    prices, labels = training_frames(comp, until)
    cols = spec.price_columns(prices.columns)
    snap = out / "snapshot"
    snap.mkdir(parents=True, exist_ok=True)
    days = BOOTSTRAP_DAYS
    prices.select("date_id", *cols).sort("date_id").tail(days).write_parquet(
        snap / "prices.parquet", statistics=False
    )
    labels.sort("date_id").tail(days).write_parquet(snap / "labels.parquet", statistics=False)
    out_info = {
        "prices": "snapshot/prices.parquet",
        "labels": "snapshot/labels.parquet",
        "last_date_id": int(prices["date_id"].max()),
    }
    if crash is not None:  # the crash model's inputs need a longer history of a few columns
        cols = [c for c in crash.columns if c in prices.columns]
        prices.select("date_id", *cols).sort("date_id").tail(
            CRASH_WINDOW + HISTORY_MARGIN + REPLAY_DAYS
        ).write_parquet(snap / "crash_prices.parquet", statistics=False)
        out_info["crash_prices"] = "snapshot/crash_prices.parquet"
    return out_info


def data_origin(data_dir: Path) -> str:
    """Where training data came from: the built-in synthetic market, or Kaggle's competition files."""
    if not Path(data_dir).is_dir():
        return ORIGIN_UNKNOWN
    return ORIGIN_SYNTHETIC if (Path(data_dir) / SYNTHETIC_MARKER).exists() else ORIGIN_COMPETITION


def build(
    models_dir: Path | str, out: Path | str = "artifacts", data_dir: Path | str | None = None
) -> Manifest:
    """Build the artifacts directory from a training run; returns the manifest."""
    models_dir, out = Path(models_dir), Path(out)
    info = _read_models(models_dir)
    spec = FeatureSpec()
    data_dir = Path(data_dir or info.data.dir)

    if out.exists():
        for child in out.iterdir():
            if child.name != ".gitkeep":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir()

    models: list[tuple[str, Path]] = [("regime", models_dir / info.regime.file)]
    targets = {}
    for name in sorted(info.targets, key=lambda n: int(n.removeprefix("target_"))):
        entry = info.targets[name]
        if entry.file:
            models.append((name, models_dir / entry.file))
            targets[name] = name
        else:
            targets[name] = None
    packed = pack_forest(models, feature_names=spec.all_features())
    save_forest(out / "forest.npz", packed)
    for name, path in models:
        write_gzip(path.read_bytes(), out / "models" / f"{name}.txt.gz")
    crash = None
    if info.etf_crash is not None:
        crash_json = json.loads((models_dir / info.etf_crash.model).read_text())
        crash = CrashModel.from_json(crash_json)
        crash_file = models_dir / info.etf_crash.file
        save_forest(out / "crash.npz", pack_forest([("etf_crash", crash_file)], feature_names=crash.features))
        (out / "crash.json").write_text(json.dumps(crash_json, indent=1, sort_keys=True) + "\n")
        write_gzip(crash_file.read_bytes(), out / "models" / "etf_crash.txt.gz")

    blend = _package_blend(info, models_dir, out, spec)

    kdir = out / "kaggle_kernel"
    kdir.mkdir()
    for f in sorted(KERNEL_DIR.iterdir()):
        if f.suffix in (".py", ".json") and f.is_file():
            shutil.copyfile(f, kdir / f.name)
    snapshot = _snapshot(data_dir, spec, out, info.data.until, crash)

    user = kaggle_username(dict(os.environ))
    dataset_id = f"{user or 'YOUR_KAGGLE_USERNAME'}/{DATASET_SLUG}"
    meta = {"title": DATASET_SLUG, "id": dataset_id, "licenses": [{"name": "CC0-1.0"}], "isPrivate": True}
    (out / "dataset-metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")

    files = {}
    # dataset-metadata.json is read by the kaggle CLI, not uploaded: it is not part of the dataset
    for f in sorted(
        p
        for p in out.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, ".gitkeep", "dataset-metadata.json")
    ):
        files[f.relative_to(out).as_posix()] = FileEntry(sha256=sha256_file(f), bytes=f.stat().st_size)
    manifest = Manifest(
        kit_version=kaggle_kernel.__version__,
        git_revision=git_revision(),
        libraries=_versions(),
        feature_names=spec.all_features(),
        stage1=["regime"],
        models={
            m.name: {"features": list(m.feature_names), "objective": m.objective, "trees": m.n_trees}
            for m in packed.forest().models
        },
        targets=targets,
        fallbacks={t: e.fallback for t, e in info.targets.items() if e.fallback},
        target_mode=info.target_mode,
        training=Training(
            origin=data_origin(Path(info.data.dir)),
            data=info.data.to_json(),
            cv=asdict(info.cv),
        ),
        snapshot=snapshot,
        blend=blend,
        etf_crash={"forest": "crash.npz", "model": "crash.json"} if crash is not None else None,
        dataset_id=dataset_id,
        files=files,
    )
    manifest.write(out)
    if user is None:
        print("warning: no KAGGLE_USERNAME or kaggle.json; dataset-metadata.json has a placeholder id")
    return manifest


def _package_blend(info: ModelsFile, models_dir: Path, out: Path, spec: FeatureSpec) -> dict:
    """The served blend (engine section's files): pooled LightGBM packed as pooled.npz, the ridge
    and the blend spec (weights, prior vector) as JSON, the per-target linear members as local.npz
    and leaders.npz."""
    entry = asdict(info.blend)
    pooled_text = models_dir / entry["pooled"]
    save_forest(
        out / "pooled.npz", pack_forest([("pooled", pooled_text)], feature_names=spec.pooled_features())
    )
    write_gzip(pooled_text.read_bytes(), out / "models" / "pooled.txt.gz")
    for name in ("ridge", "spec"):
        data = json.loads((models_dir / entry[name]).read_text())
        (out / f"{'blend' if name == 'spec' else name}.json").write_text(
            json.dumps(data, indent=1, sort_keys=True) + "\n"
        )
    served = {"spec": "blend.json", "pooled": "pooled.npz", "ridge": "ridge.json"}
    for member in PER_TARGET:
        if entry.get(member):
            write_npz(out / f"{member}.npz", LocalLinear.load(models_dir / entry[member], spec).arrays())
            served[member] = f"{member}.npz"
    return served


def write_gzip(data: bytes, path: Path) -> None:
    """gzip without a timestamp or file name, so the same model gives the same bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)


def artifact_size(out: Path | str) -> int:
    return sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())


def _package(args: argparse.Namespace) -> int:
    manifest = build(args.models, args.out, args.data)
    n_models = len(manifest.models)
    size = artifact_size(args.out) / 1e6
    print(f"artifacts: {args.out} ({n_models} models, {size:.1f} MB, dataset {manifest.dataset_id}, private)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("package", help="build artifacts/ (the Kaggle dataset) from a training run")
    p.add_argument("--models", default="runs/train", help="training output directory (default runs/train)")
    p.add_argument("--out", default="artifacts", help="artifacts directory (default artifacts)")
    p.add_argument(
        "--data", help="competition directory for the history snapshot (default: the training data)"
    )
    p.set_defaults(func=_package)
    register_check(sub)


def _check(args: argparse.Namespace) -> int:
    from kaggle_kernel.artifacts import check_artifacts

    manifest, problems = check_artifacts(args.dir)
    for name, problem in problems.items():
        print(f"error: {Path(args.dir) / name}: {problem}")
    if problems:
        print(
            f"{len(problems)} artifact problem(s): on Kaggle the kernel would fall back to the naive baseline "
            f"for the affected parts. Rebuild with `make package`."
        )
        return 1
    print(f"artifacts OK: {len(manifest.files)} files match manifest.json (git {manifest.git_revision})")
    return 0


def register_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-artifacts", help="verify every artifact file against manifest.json (SHA-256)")
    p.add_argument("dir", nargs="?", default="artifacts", help="artifacts directory (default artifacts)")
    p.set_defaults(func=_check)
