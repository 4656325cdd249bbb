"""`make submit`: artifacts/ -> private Kaggle dataset -> kernel run -> code-competition submission.

One list of steps (`STEPS`), each with the kaggle command(s) it runs; the dry run prints them,
the real run executes them in order:
  1. kaggle datasets status OWNER/SLUG --format json(...)      does the dataset exist?
  2. kaggle datasets create -p artifacts --dir-mode zip ...    (or `datasets version -m MSG`)
  3. kaggle datasets status ... (repeated)                     until the new version is ready
  4. kaggle kernels push -p STAGE                              kernel-metadata.json filled in
  5. kaggle kernels status OWNER/KERNEL (repeated)             until the run is complete
  6. kaggle competitions submit COMP -k OWNER/KERNEL -v N ...  the code submission of that version
Credentials (credentials.py), the CLI and its errors (kaggle_cli.py) and waiting (polling.py) live
beside this module. The dry run needs no credentials: missing names show as placeholders.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kaggle_kernel.manifest import Manifest
from offline.errors import UserError
from offline.release.credentials import kaggle_username, missing_credentials
from offline.release.kaggle_cli import Kaggle, kaggle_cli
from offline.release.polling import (
    dataset_state,
    pushed_version,
    status_args,
    wait_for_dataset,
    wait_for_kernel,
)

COMPETITION = "mitsui-commodity-prediction-challenge"
SUBMISSION_FILE = "submission.parquet"  # what the evaluation gateway writes in the kernel run
PLACEHOLDER_OWNER = "YOUR_KAGGLE_USERNAME"
NOT_UPLOADED = ".gitkeep"


def read_dataset_id(artifacts: Path, allow_placeholder: bool = False) -> str:
    """The dataset id in artifacts/dataset-metadata.json, checked for a real owner (not in a dry run)."""
    meta_path = artifacts / "dataset-metadata.json"
    if not artifacts.is_dir() or not meta_path.exists():
        raise UserError(f"{meta_path} not found: run make package first")
    try:
        meta = json.loads(meta_path.read_text())
        dataset_id = str(meta["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{meta_path}: unreadable dataset metadata ({exc}); run make package again") from None
    owner, _, slug = dataset_id.partition("/")
    if not owner or not slug or "/" in slug:
        raise UserError(f"{meta_path}: id {dataset_id!r} is not OWNER/SLUG")
    if owner == PLACEHOLDER_OWNER and not allow_placeholder:
        raise UserError(
            f"{meta_path}: id {dataset_id!r} has no Kaggle username; set KAGGLE_USERNAME "
            f"(or kaggle.json) and run make package again"
        )
    return dataset_id


def check_manifest(artifacts: Path) -> Manifest:
    """The manifest, after checking every listed file against its SHA-256 (no stale uploads)."""
    from kaggle_kernel.artifacts import check_artifacts

    manifest, problems = check_artifacts(artifacts)
    if problems:
        name, problem = next(iter(problems.items()))
        raise UserError(
            f"{artifacts / name}: {problem} ({len(problems)} problem(s) in {artifacts}); "
            f"run make package again"
        )
    return manifest


def kernel_metadata(template: dict, kernel_owner: str, dataset_id: str, public: bool) -> dict:
    """kernel-metadata.json as pushed: our id and dataset, the competition, internet and GPU off."""
    slug = str(template.get("id", "")).partition("/")[2] or "mitsui-kit-submission"
    meta = dict(template)
    meta.update(
        {
            "id": f"{kernel_owner}/{slug}",
            "dataset_sources": [dataset_id],
            "competition_sources": sorted({*template.get("competition_sources", []), COMPETITION}),
            "is_private": not public,
            "enable_gpu": False,
            "enable_tpu": False,
            "enable_internet": False,
            "kernel_type": template.get("kernel_type", "script"),
            "language": template.get("language", "python"),
        }
    )
    return meta


def stage_kernel(meta: dict, code_source: Path, stage: Path) -> Path:
    """Write kernel-metadata.json and the code file into `stage` (code_file keeps its relative path)."""
    target = stage / meta["code_file"]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(code_source, target)
    (stage / "kernel-metadata.json").write_text(json.dumps(meta, indent=1) + "\n")
    return stage


def submit_args(kernel_id: str, version: str, message: str) -> list[str]:
    return [
        "competitions",
        "submit",
        COMPETITION,
        "-k",
        kernel_id,
        "-v",
        version,
        "-f",
        SUBMISSION_FILE,
        "-m",
        message,
    ]


def _default_message(manifest: Manifest) -> str:
    return f"mitsui-kit {manifest.kit_version} ({manifest.git_revision[:12]})"


@dataclass
class Plan:
    """What the steps act on, and what earlier steps learned (dataset version, kernel version)."""

    artifacts: Path
    dataset_id: str
    meta: dict
    code_source: Path
    message: str
    public: bool
    poll: float
    timeout: float
    learned: dict = field(default_factory=dict)

    @property
    def kernel_id(self) -> str:
        return self.meta["id"]

    def upload_args(self, create: bool) -> list[str]:
        common = ["-p", str(self.artifacts), "--dir-mode", "zip", "--ignore-patterns", NOT_UPLOADED]
        if create:
            return ["datasets", "create", *common, *(["--public"] if self.public else [])]
        return ["datasets", "version", *common, "-m", self.message]


@dataclass(frozen=True)
class Step:
    """One step: the commands it runs (with a note for the dry run) and how the real run does it."""

    name: str
    commands: Callable[[Plan], list[tuple[list[str], str]]]
    run: Callable[[Kaggle, Plan], None]


def _check_dataset(kaggle: Kaggle, plan: Plan) -> None:
    state = dataset_state(kaggle, plan.dataset_id)
    plan.learned["exists"] = state is not None
    plan.learned["min_version"] = 1 if state is None else (state[1] or 0) + 1
    if state is None:
        kaggle.say(f"  dataset {plan.dataset_id} does not exist yet: creating it")
    else:
        kaggle.say(f"  dataset {plan.dataset_id} exists (version {state[1]}): adding a version")


def _upload(kaggle: Kaggle, plan: Plan) -> None:
    create = not plan.learned["exists"]
    step = "creating the dataset" if create else "versioning the dataset"
    kaggle.run(step, plan.upload_args(create), echo_output=True)


def _push(kaggle: Kaggle, plan: Plan) -> None:
    with tempfile.TemporaryDirectory(prefix="mitsui-kit-kernel-") as tmp:
        stage = stage_kernel(plan.meta, plan.code_source, Path(tmp))
        stdout = kaggle.run("pushing the kernel", ["kernels", "push", "-p", str(stage)], echo_output=True)
    plan.learned["kernel_version"] = pushed_version(stdout)


def _submit(kaggle: Kaggle, plan: Plan) -> None:
    version = str(plan.learned["kernel_version"])
    kaggle.run(
        "submitting to the competition", submit_args(plan.kernel_id, version, plan.message), echo_output=True
    )
    kaggle.say(
        f"submitted {plan.kernel_id} version {version} to {COMPETITION}; "
        f"see https://www.kaggle.com/competitions/{COMPETITION}/submissions"
    )


STEPS = (
    Step("checking the dataset", lambda p: [(status_args(p.dataset_id), "")], _check_dataset),
    Step(
        "uploading the dataset",
        lambda p: [
            (p.upload_args(True), "when the dataset does not exist yet"),
            (p.upload_args(False), "when it exists"),
        ],
        _upload,
    ),
    Step(
        "waiting for the dataset",
        lambda p: [(status_args(p.dataset_id), "repeated until the new version is ready")],
        lambda k, p: wait_for_dataset(k, p.dataset_id, p.learned["min_version"], p.poll, p.timeout),
    ),
    Step(
        "pushing the kernel",
        lambda p: [
            (
                ["kernels", "push", "-p", "STAGE"],
                f"STAGE: a temporary dir with {p.meta['code_file']} and this kernel-metadata.json:\n{json.dumps(p.meta, indent=1)}",
            )
        ],
        _push,
    ),
    Step(
        "waiting for the kernel run",
        lambda p: [(["kernels", "status", p.kernel_id], "repeated until the run completes")],
        lambda k, p: wait_for_kernel(k, p.kernel_id, p.learned["kernel_version"], p.poll, p.timeout),
    ),
    Step(
        "submitting to the competition",
        lambda p: [(submit_args(p.kernel_id, "VERSION", p.message), "VERSION: the one kernels push reports")],
        _submit,
    ),
)


def _plan(args: argparse.Namespace, env: dict[str, str]) -> Plan:
    artifacts, meta_path = Path(args.artifacts), Path(args.kernel_metadata)
    dataset_id = read_dataset_id(artifacts, allow_placeholder=args.dry_run)
    manifest = check_manifest(artifacts)
    try:
        template = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{meta_path}: cannot read the kernel metadata ({exc})") from None
    code_source = meta_path.parent / template.get("code_file", "")
    if not template.get("code_file") or not code_source.is_file():
        raise UserError(f"{meta_path}: code_file {template.get('code_file')!r} not found next to it")
    owner = kaggle_username(env) or dataset_id.split("/")[0]
    return Plan(
        artifacts=artifacts,
        dataset_id=dataset_id,
        meta=kernel_metadata(template, owner, dataset_id, args.public),
        code_source=code_source,
        message=args.message or _default_message(manifest),
        public=args.public,
        poll=args.poll_seconds,
        timeout=args.timeout,
    )


def submit(args: argparse.Namespace) -> int:
    """Run the steps (or print them with --dry-run); every failure is a UserError naming its step."""
    env = dict(os.environ)
    plan = _plan(args, env)
    if not args.dry_run:
        problem = missing_credentials(env)
        if problem:
            raise UserError(problem)
    kaggle = Kaggle(kaggle_cli() if not args.dry_run else "kaggle")
    visibility = "PUBLIC" if args.public else "private"
    kaggle.say(
        f"submitting {plan.artifacts} as {visibility} dataset {plan.dataset_id} and {visibility} kernel "
        f"{plan.kernel_id} to {COMPETITION}"
    )
    if args.dry_run:
        kaggle.say("dry run: printing the kaggle commands, nothing is sent")
        for step in STEPS:
            for command, note in step.commands(plan):
                kaggle.command(command, note=note.splitlines()[0] if note else "")
                for extra in note.splitlines()[1:]:
                    kaggle.say(extra)
        return 0
    for step in STEPS:
        step.run(kaggle, plan)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="push artifacts/ and the kernel to Kaggle, wait for the run, submit it",
        description="Upload artifacts/ as a private Kaggle dataset (create or new version), push the kernel "
        "(kernel-metadata.json, internet and GPU off) with that dataset attached, wait for its run, "
        "then create the code-competition submission for that kernel version. Uses the kaggle CLI "
        "and its credentials (KAGGLE_USERNAME/KAGGLE_KEY, KAGGLE_API_TOKEN or kaggle.json).",
    )
    p.add_argument(
        "--artifacts", default="artifacts", help="artifacts directory from make package (default artifacts)"
    )
    p.add_argument(
        "--kernel-metadata",
        default="kernel-metadata.json",
        help="kernel metadata template (default kernel-metadata.json)",
    )
    p.add_argument(
        "--message",
        "-m",
        help="dataset version notes and submission description "
        "(default: kit version and git revision from manifest.json)",
    )
    p.add_argument("--dry-run", action="store_true", help="print each kaggle command instead of running it")
    p.add_argument(
        "--public", action="store_true", help="make a new dataset and the kernel public (default private)"
    )
    p.add_argument(
        "--poll-seconds", type=float, default=10.0, help="seconds between status checks (default 10)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for the dataset and, separately, for the kernel run (default 3600)",
    )
    p.set_defaults(func=submit)
