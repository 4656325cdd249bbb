"""F2 and ranking metrics, and probability calibration (as JSON).

The crash model is judged by ranking (PR AUC, ROC AUC), so its calibration must keep the ranking:
the one method is the sigmoid (Platt) map on the raw logit with a positive slope. Isotonic
regression, the second pass's choice, merged neighbouring scores into ties and so changed both AUCs.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12  # logit clip: far below any probability the models give, so no ties are made
CALIBRATION = "sigmoid"
MIN_SLOPE = 1e-3  # a sigmoid slope at or below 0 would reverse the ranking: clipped here


def f_beta(precision: np.ndarray, recall: np.ndarray, beta: float = 2.0) -> np.ndarray:
    b2 = beta * beta
    den = b2 * precision + recall
    return np.where(den > 0, (1 + b2) * precision * recall / np.where(den > 0, den, 1), 0.0)


def classification(y: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    """Confusion matrix, precision, recall and F2 of `score >= threshold`."""
    pred = score >= threshold
    y = y.astype(bool)
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
    fn, tn = int(np.sum(~pred & y)), int(np.sum(~pred & ~y))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f2 = float(f_beta(np.array(precision), np.array(recall)))
    return {
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f2": f2,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "positive_rate": float(pred.mean()),
    }


def threshold_curve(y: np.ndarray, score: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F2 of `score >= t` for every t (vectorised over thresholds)."""
    order = np.sort(score)
    pos_scores = np.sort(score[y == 1])
    predicted = len(score) - np.searchsorted(order, thresholds, side="left")
    tp = len(pos_scores) - np.searchsorted(pos_scores, thresholds, side="left")
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = tp / max(len(pos_scores), 1)
    return {
        "threshold": thresholds,
        "precision": precision,
        "recall": recall,
        "f2": f_beta(precision, recall),
        "positive_rate": predicted / len(score),
    }


def ranking(y: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    both = 0 < y.sum() < len(y)
    return {
        "pr_auc": float(average_precision_score(y, score)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(y, score)) if both else float("nan"),
    }


# --- calibration -------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit_calibration(method: str, p: np.ndarray, y: np.ndarray) -> dict:
    """Fit a calibration map from raw probabilities to frequencies; returns its JSON form."""
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        if y.min() == y.max():  # one class only: a constant map at that frequency
            return {"method": "sigmoid", "a": 0.0, "b": float(_logit(np.array([y.mean()]))[0])}
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
        return {"method": "sigmoid", "a": max(float(lr.coef_[0, 0]), MIN_SLOPE), "b": float(lr.intercept_[0])}
    raise ValueError(f"unknown calibration method {method!r}")


def apply_calibration(cal: dict, p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if cal["method"] == "sigmoid":
        return 1.0 / (1.0 + np.exp(-(cal["a"] * _logit(p) + cal["b"])))
    raise ValueError(f"unknown calibration method {cal['method']!r}")


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def calibrate(p: np.ndarray, y: np.ndarray, method: str = CALIBRATION) -> dict:
    """Fit `method` on (p, y) and record its Brier score before and after, and the rows it saw."""
    cal = fit_calibration(method, p, y)
    cal["brier"] = {"raw": brier(y, p), "calibrated": brier(y, apply_calibration(cal, p))}
    cal["rows"] = len(p)
    return cal
