"""PNG figures: PR/ROC curves of the crash model vs the naive rule, and the test-block backtest."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def pr_roc(y: np.ndarray, scores: dict[str, np.ndarray], pr_path: Path, roc_path: Path) -> None:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, s in scores.items():
        p, r, _ = precision_recall_curve(y, s)
        ax.plot(r, p, label=name)
    ax.axhline(y.mean(), color="grey", ls="--", label=f"base rate {y.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Crash model, test block: precision-recall")
    ax.legend()
    fig.tight_layout()
    fig.savefig(pr_path, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Crash model, test block: ROC")
    ax.legend()
    fig.tight_layout()
    fig.savefig(roc_path, dpi=110)
    plt.close(fig)


def threshold_curve(curve: dict[str, np.ndarray], chosen: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("precision", "recall", "f2"):
        ax.plot(curve["threshold"], curve[key], label=key)
    ax.axvline(chosen, color="k", ls=":", label=f"chosen {chosen:.3f}")
    ax.set(xlabel="threshold on calibrated probability", title="Validation block threshold scan")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def backtest(
    x: np.ndarray,
    series: dict[str, np.ndarray],
    drawdowns: dict[str, np.ndarray],
    exposure: np.ndarray,
    prob: np.ndarray,
    threshold: float,
    crash: np.ndarray,
    path: Path,
    xlabel: str,
) -> None:
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True, height_ratios=[3, 2, 1.3, 1.5])
    # strategy, then its twin without the crash signal (dashed: the two coincide when beta is 0), then
    # buy-and-hold and the two timing rules
    styles = [
        {"color": "tab:blue", "lw": 2.0},
        {"color": "tab:orange", "lw": 1.2, "ls": "--"},
        {"color": "tab:gray", "lw": 1.0},
        {"color": "tab:green", "lw": 0.9, "ls": ":"},
        {"color": "tab:purple", "lw": 0.9, "ls": "-."},
    ]
    for (name, eq), style in zip(series.items(), styles, strict=False):
        axes[0].plot(x, eq, label=name, **style)
    axes[0].set(ylabel="equity", title="Test block backtest")
    axes[0].legend()
    for (name, dd), style in zip(drawdowns.items(), styles, strict=False):
        axes[1].plot(x, dd, label=name, **style)
    axes[1].set(ylabel="drawdown")
    axes[2].plot(x, exposure, drawstyle="steps-post", color="tab:blue")
    axes[2].set(ylabel="exposure", ylim=(-0.05, 1.05))
    axes[3].plot(x, prob, color="tab:red", label="crash probability")
    axes[3].axhline(threshold, color="k", ls=":", label="threshold")
    hits = np.nan_to_num(crash) > 0
    axes[3].scatter(np.asarray(x)[hits], np.zeros(hits.sum()), marker="|", color="k", label="crash label")
    axes[3].set(ylabel="probability", xlabel=xlabel)
    axes[3].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
