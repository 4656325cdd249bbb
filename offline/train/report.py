"""The training report as markdown and PNG plots (regime vs volatility, IC histogram, folds, reliability)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from offline.train.run_files import SCALE_TEXT, TrainReport, counts_text  # noqa: E402


def write_plots(out: Path, data, regime, report: TrainReport, folds) -> list[Path]:
    """The four PNGs report.md links to."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    col = data.col
    days = data.date_ids

    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(days, data.X[:, col["px_rv21"]], color="0.4", lw=0.8, label="proxy 21-day realized vol")
    ax.set_ylabel("annualized vol")
    ax2 = ax.twinx()
    ax2.plot(days, regime.oof_prob, color="tab:red", lw=0.8, label="P(high-vol regime), out of fold")
    hi = np.where(regime.label == 1, 1.0, np.nan)
    ax2.scatter(days, hi * 1.02, s=2, color="black", label="label = high-vol")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("probability")
    ax.set_xlabel("date_id")
    fig.legend(loc="upper left", fontsize=8)
    ax.set_title(
        f"Regime classifier: ROC AUC {report.regime.roc_auc:.3f}, PR AUC {report.regime.pr_auc:.3f} "
        f"(base rate {report.regime.base_rate:.3f})"
    )
    paths.append(_save(fig, out / "regime_probability.png"))

    ic = np.array([v for v in report.ic.values if v is not None])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(ic, bins=40, color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("out-of-fold rank IC per target")
    ax.set_ylabel("targets")
    ax.set_title(
        f"Per-target IC: mean {ic.mean():.4f}, {100 * (ic > 0).mean():.0f}% positive" if ic.size else "no IC"
    )
    paths.append(_save(fig, out / "ic_histogram.png"))

    fig, ax = plt.subplots(figsize=(8, 4))
    n = len(report.engine_per_fold)
    series = {"blend": [f.score for f in report.per_fold]}
    series.update({name: c.per_fold for name, c in report.candidates.items()})
    for name, b in (report.baselines or {}).items():
        series[name] = b.per_fold
    # the blend and the candidates are scored on folds 1.. only: fold 0 is left empty for them
    series = {k: [float("nan")] * (n - len(v)) + list(v) for k, v in series.items()}
    width = 0.8 / len(series)
    for k, (name, vals) in enumerate(series.items()):
        ax.bar(np.arange(n) + k * width, vals, width, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(n) + 0.4 - width / 2, [f"fold {i}" for i in range(n)])
    ax.set_ylabel("competition score")
    ax.legend(fontsize=8)
    ax.set_title("Score per walk-forward fold")
    paths.append(_save(fig, out / "score_per_fold.png"))

    rel = regime.reliability
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="0.6", ls="--")
    ax.plot(rel["mean_pred"], rel["observed"], marker="o")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Regime classifier reliability (OOF)")
    paths.append(_save(fig, out / "regime_reliability.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _iv(iv) -> str:
    return "n/a" if not iv else f"[{iv[0]:.3f}, {iv[1]:.3f}]"


def headline(r: TrainReport) -> str:
    """The report's first line, also the CLI's: the blend's score, or that every target fell back."""
    n_fb, n_t = len(r.fallbacks), r.n_targets
    if r.all_fell_back:
        return (
            f"EVERY TARGET FELL BACK to the naive baseline ({n_fb} of {n_t}): no model was trained; "
            f"see the fallback reasons. Blend OOF {r.oof_score:.4f}."
        )
    text = (
        f"Blend OOF score {r.oof_score:.4f} {_iv(r.oof_interval)} over {r.n_blend_days} "
        f"blend days (folds 1..), {n_t} targets"
    )
    if r.oracle is not None and r.oracle.fraction is not None:
        text += f"; {100 * r.oracle.fraction:.1f}% of the oracle's {r.oracle.score:.4f}"
    if n_fb:
        text += f"; {n_fb} target(s) fell back to naive"
    if r.tuned_from:
        text += f"; tuned parameters from {r.tuned_from}"
    return text + "."


def write_report_md(path: Path, r: TrainReport) -> None:
    """report.md: the headline first, then every score with its interval, the blend, the decisions."""
    lines = [
        "# Training report",
        "",
        f"**{headline(r)}**",
        "",
        "Every score is the competition metric on walk-forward out-of-fold days, with its 90% "
        "block-bootstrap interval (blocks of 20 trading days, seeded). The blend, the candidates and "
        "the oracle are scored on the blend days (folds 1.., each blended with weights fit on the "
        "folds before it); the other rows on every OOF day.",
        "",
        "| model | OOF score (blend days) | 90% interval | every OOF day |",
        "| --- | --- | --- | --- |",
        f"| **blend** (nested weights) | **{r.oof_score:.4f}** | {_iv(r.oof_interval)} | |",
    ]
    for name, c in r.candidates.items():
        a = c.all_oof_days
        lines.append(
            f"| candidate: {name} | {_fmt(c.score)} | {_iv(c.interval)} | {_fmt(a.score)} {_iv(a.interval)} |"
        )
    lines.append(f"| shared structural model alone | {_fmt(r.shared_only)} | {_iv(r.shared_only_interval)} |")
    for name, b in (r.baselines or {}).items():
        lines.append(f"| baseline: {name} | {_fmt(b.score)} | {_iv(b.interval)} |")
    if r.oracle is not None:
        lines.append(f"| oracle (synthetic truth) | {r.oracle.score:.4f} | {_iv(r.oracle.interval)} |")
    chose = [f"{name}: {c.chose}" for name, c in r.candidates.items() if c.chose]
    if chose:
        lines += [
            "",
            "Chosen from the data by each fit (per fold, then the final fit): " + "; ".join(chose) + ".",
        ]
    bl = r.blend
    if bl:
        lines += [
            "",
            "## Blend",
            "",
            "Served weights (fit on every OOF day): "
            + ", ".join(f"{m} {w:.2f}" for m, w in bl.weights.items())
            + f"; neutral to the labels' {counts_text(bl.factor_counts())} leading factors;"
            + f" {bl.ties:.0%} of each day's targets"
            + f" tied at its median; members mixed as {SCALE_TEXT[bl.scale]}."
            + " Several factor counts: the average of the blends neutral to each. Each fold from 1 on is"
            + " blended with weights, factor counts, a tied share and a scale fit on the"
            + " earlier folds only.",
            "",
            "| fold | weights | factors | tied | scale | fit on days |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for f in bl.per_fold_weights:
            w = ", ".join(f"{m} {v:.2f}" for m, v in f["weights"].items())
            lines.append(
                f"| {f['fold']} | {w} | {counts_text(f['factors'])} | {f.get('ties', 0.0):.0%}"
                f" | {SCALE_TEXT[f.get('scale', 'rank')]} | {f['fit_days']} |"
            )
        lines += [
            "",
            "Paired tests on daily correlations, blend against each member (decided on the score:"
            " better or worse when the 90% interval of the score difference excludes 0):",
            "",
            "| member | mean daily gain | t | score difference | 90% interval | decision |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for m, t in bl.vs_members.items():
            lines.append(
                f"| {m} | {_fmt(t['mean_daily_gain'])} | {_fmt(t['t'])} | {_fmt(t.get('score_difference'))} | "
                f"{_iv(t.get('score_difference_interval'))} | blend {t['decision']} |"
            )
    tm = r.target_mode
    test = tm.rank_vs_raw
    lines += [
        "",
        f"Target transform, chosen by OOF score on {tm.decided_on_targets} targets: "
        + ", ".join(f"{m} {_fmt(s)} {_iv(tm.intervals.get(m))}" for m, s in tm.scores.items())
        + f" -> **{tm.chosen}**"
        + (f" (paired rank - raw: t = {test['t']:.2f}, {test['decision']})." if test else "."),
    ]
    etf = r.etf_crash_prob
    if etf.gain is not None:
        g = etf.gain
        lines.append(
            f"ETF crash probability: with {_fmt(etf.with_score)}, without {_fmt(etf.without_score)}; paired gain "
            f"t = {g['t']:.2f} ({g.get('decision', '')}) -> {'used' if etf.used else 'not used'}."
        )
    g = r.regime
    lines += [
        "",
        "## Regime classifier",
        "",
        f"ROC AUC {_fmt(g.roc_auc)}, PR AUC {_fmt(g.pr_auc)} (base rate {_fmt(g.base_rate)}), Brier {_fmt(g.brier)}.",
        "",
        "| fold | n | base rate | ROC AUC | PR AUC | Brier |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in g.folds:
        lines.append(
            f"| {f['fold']} | {f['n']} | {_fmt(f['base_rate'])} | {_fmt(f['roc_auc'])} | {_fmt(f['pr_auc'])} | {_fmt(f['brier'])} |"
        )
    a = r.ablation
    if a is not None:
        lines += [
            "",
            f"## Ablation ({a.targets} targets)",
            "",
            "| variant | score | 90% interval |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {k} | {_fmt(v)} | {_iv(a.intervals.get(k))} |" for k, v in a.scores.items()]
    lines += ["", "## Folds (blend)", "", "| fold | score | mean daily corr |", "| --- | --- | --- |"]
    lines += [f"| {f.fold} | {_fmt(f.score)} | {_fmt(f.mean)} |" for f in r.per_fold]
    ic = r.ic
    lines += [
        "",
        f"Per-target IC (blend): mean {_fmt(ic.mean)}, median {_fmt(ic.median)}, positive {_fmt(ic.frac_positive)}.",
    ]
    if r.fallbacks:
        lines += ["", f"## Fallbacks ({len(r.fallbacks)} targets use the naive baseline)", ""]
        lines += [f"- {f.target}: {f.reason}" for f in r.fallbacks]
    lines += [
        "",
        f"Training took {r.train_seconds:.0f} s. Per step: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in r.seconds.items())
        + ".",
        "",
        "Plots: plots/regime_probability.png, plots/ic_histogram.png, plots/score_per_fold.png, "
        "plots/regime_reliability.png",
    ]
    path.write_text("\n".join(lines) + "\n")
