"""The script Kaggle runs (kernel-metadata.json code_file).

Finds the kit's artifacts dataset, imports the kaggle_kernel runtime shipped inside it, builds the
Predictor (verify, load, bootstrap) before the inference server starts, then serves:
`serve()` on Kaggle's rerun, `run_local_gateway` otherwise. Nothing here may stop the server from
starting: without usable artifacts the Predictor degrades to the naive baseline and says so.
"""

import os
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
COMPETITION_DIR = Path(
    os.environ.get("KAGGLE_KIT_DATA_DIR", "/kaggle/input/mitsui-commodity-prediction-challenge")
)
ARTIFACT_FORMAT = '"format": "mitsui-kit-artifacts/'


def find_artifacts() -> Path | None:
    """MITSUI_KIT_ARTIFACTS, else a dataset under /kaggle/input holding our manifest, else ./artifacts."""
    explicit = os.environ.get("MITSUI_KIT_ARTIFACTS")
    if explicit:
        return Path(explicit)
    kaggle_input = Path("/kaggle/input")
    if kaggle_input.is_dir():
        for depth in ("*", "*/*", "*/*/*"):
            for manifest in sorted(kaggle_input.glob(f"{depth}/manifest.json")):
                try:
                    if ARTIFACT_FORMAT in manifest.read_text()[:200_000]:
                        return manifest.parent
                except OSError:
                    continue
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "artifacts", Path.cwd() / "artifacts"):
        if (candidate / "manifest.json").exists():
            return candidate
    return None


def log(message: str) -> None:
    print(f"[kit] {message}", file=sys.stderr, flush=True)


ARTIFACTS = find_artifacts()
if ARTIFACTS is not None and (ARTIFACTS / "kaggle_kernel").is_dir():
    sys.path.insert(0, str(ARTIFACTS))  # the runtime the dataset was built with
if COMPETITION_DIR.is_dir() and str(COMPETITION_DIR) not in sys.path:
    sys.path.append(str(COMPETITION_DIR))  # Kaggle's kaggle_evaluation package lives there

from kaggle_kernel.batches import FAILURES  # noqa: E402
from kaggle_kernel.predictor import Predictor  # noqa: E402

if ARTIFACTS is None:
    log("no artifacts found (set MITSUI_KIT_ARTIFACTS or attach the dataset); serving the naive baseline")
    predictor = Predictor()
else:
    try:
        predictor = Predictor.from_artifacts(
            ARTIFACTS, data_dir=COMPETITION_DIR if COMPETITION_DIR.is_dir() else None
        )
    except FAILURES as exc:  # from_artifacts degrades by itself; this is the last guard
        log(
            f"could not build the predictor from {ARTIFACTS}: {type(exc).__name__}: {exc}; serving the naive baseline"
        )
        predictor = Predictor()
n_models = len(predictor.stage2_targets)
log(
    f"ready in {time.perf_counter() - T0:.2f} s: {n_models} target models, regime model "
    f"{'on' if predictor.stage1 is not None else 'off'}, {len(predictor.history.prices)} days of history, "
    f"artifact problems: {len(predictor.problems)}"
)


def predict(test, label_lags_1_batch, label_lags_2_batch, label_lags_3_batch, label_lags_4_batch):
    return predictor.predict(
        test, label_lags_1_batch, label_lags_2_batch, label_lags_3_batch, label_lags_4_batch
    )


import kaggle_evaluation.mitsui_inference_server  # noqa: E402

inference_server = kaggle_evaluation.mitsui_inference_server.MitsuiInferenceServer(predict)

if os.getenv("KAGGLE_IS_COMPETITION_RERUN"):
    inference_server.serve()
else:
    inference_server.run_local_gateway((str(COMPETITION_DIR),))
