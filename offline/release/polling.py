"""Waiting on Kaggle: the dataset version becoming ready, the kernel run completing."""

from __future__ import annotations

import json
import re
import time

from offline.errors import UserError
from offline.release.kaggle_cli import Kaggle, _detail

DATASET_FAILED = {"failed", "deleted"}
KERNEL_DONE = "COMPLETE"
KERNEL_FAILED = {"ERROR", "CANCEL_REQUESTED", "CANCEL_ACKNOWLEDGED"}


def status_args(dataset_id: str) -> list[str]:
    return ["datasets", "status", dataset_id, "--format", "json(status,current_version_number)"]


def dataset_state(kaggle: Kaggle, dataset_id: str, echo: bool = True) -> tuple[str, int | None] | None:
    """(status, current version) of the dataset, or None when Kaggle has no such dataset."""
    args = status_args(dataset_id)
    try:
        stdout = kaggle.run("checking the dataset", args, echo=echo)
    except UserError as exc:
        if "HTTP 404" in str(exc):
            return None
        raise
    found = re.search(r"\{.*\}", stdout, re.S)
    try:
        state = json.loads(found.group(0)) if found else {}
        return str(state["status"]), state.get("current_version_number")
    except (ValueError, KeyError) as exc:
        raise UserError(
            f"checking the dataset: unexpected answer from kaggle datasets status: {stdout.strip()!r}"
        ) from exc


def wait_for_dataset(kaggle: Kaggle, dataset_id: str, min_version: int, poll: float, timeout: float) -> None:
    kaggle.command(
        status_args(dataset_id),
        note=f"repeated every {poll:g} s until version {min_version} is ready",
    )
    deadline, last = time.monotonic() + timeout, None
    while True:
        state = dataset_state(kaggle, dataset_id, echo=False)
        status, version = state if state else ("not visible yet", None)
        if (status, version) != last:
            kaggle.say(f"  dataset {dataset_id}: {status} (version {version})")
            last = (status, version)
        if status == "ready" and (version is None or version >= min_version):
            return
        if status in DATASET_FAILED:
            raise UserError(
                f"waiting for the dataset: Kaggle reports {dataset_id} as {status}; "
                f"see https://www.kaggle.com/datasets/{dataset_id}"
            )
        if time.monotonic() > deadline:
            raise UserError(
                f"waiting for the dataset: {dataset_id} still {status} after {timeout:g} s; "
                f"re-run later or raise --timeout"
            )
        time.sleep(poll)


def pushed_version(stdout: str) -> int:
    found = re.search(r"Kernel version (\d+) successfully pushed", stdout)
    if not found:
        raise UserError(f"pushing the kernel: no version number in the kaggle output: {_detail(stdout)}")
    return int(found.group(1))


def wait_for_kernel(kaggle: Kaggle, kernel_id: str, version: int, poll: float, timeout: float) -> None:
    kaggle.command(
        ["kernels", "status", kernel_id], note=f"repeated every {poll:g} s until the run completes"
    )
    deadline, last = time.monotonic() + timeout, None
    while True:
        time.sleep(poll)  # give Kaggle time to register the new version's run
        stdout = kaggle.run("waiting for the kernel run", ["kernels", "status", kernel_id], echo=False)
        found = re.search(r'has status "(?:KernelWorkerStatus\.)?([A-Za-z_]+)"', stdout)
        status = found.group(1).upper() if found else "UNKNOWN"
        if status != last:
            kaggle.say(f"  kernel {kernel_id} version {version}: {status.lower()}")
            last = status
        if status == KERNEL_DONE:
            return
        if status in KERNEL_FAILED:
            failure = re.search(r'Failure message: "(.*)"', stdout)
            reason = failure.group(1) if failure else status.lower()
            raise UserError(
                f"kernel run: {kernel_id} version {version} failed on Kaggle: {reason} "
                f"(log: kaggle kernels output {kernel_id} -p DIR)"
            )
        if time.monotonic() > deadline:
            raise UserError(
                f"kernel run: {kernel_id} version {version} still {status.lower()} after "
                f"{timeout:g} s; re-run later or raise --timeout"
            )
