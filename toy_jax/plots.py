"""PNG figures of the toy mechanism analysis (Figures 5, 6, 9 of the paper and extras).

Every `fig_*` function takes the dicts produced by `toy_jax.analysis` (themselves computed from
run directories by `scripts/make_figures.py`) and writes one PNG; `write_run_figures` draws the
figures of one run directory from its files alone (what `toy_jax/train.py` does at the end of a
run). matplotlib is imported lazily with the Agg backend, so importing this module has no side
effects.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

FWD, REV = "tab:blue", "tab:orange"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return str(path)


def _corr_axis(ax, corr: dict, label: str, color: str, theory: bool = True, init=None):
    h = corr["heads"][0]
    s = np.asarray(h["delta_sum"])
    ax.fill_between(s, h["corr_q05"], h["corr_q95"], color=color, alpha=0.12,
                    label="5-95 % of placement pairs")
    ax.fill_between(s, h["ci95_lo"], h["ci95_hi"], color=color, alpha=0.35,
                    label="95 % bootstrap CI (letters)")
    ax.plot(s, h["corr_mean"], color=color, lw=1.8, label=label)
    if init is not None:
        ax.plot(init["heads"][0]["delta_sum"], init["heads"][0]["corr_mean"], color="gray",
                ls=":", lw=1.2, label="same seed at initialisation")
    if theory:
        ax.plot(s, corr["theory_trace_bound"], "k--", lw=1.2,
                label=r"$\frac{1}{D}\mathrm{Tr}\,R(\Delta_1+\Delta_2)$, D=%d" % corr["d_head"])
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel(r"$\Delta_1 + \Delta_2$")
    ax.set_ylabel("corr(fwd score, rev score) over 26 letters")
    ax.set_ylim(-1.05, 1.05)


def fig_correlation(panels: list[tuple[str, dict, dict | None]], path) -> str:
    """Figure 6a / 9 left: one panel per (title, score_correlation, init correlation or None)."""
    plt = _plt()
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.6 * ncol, 4.4 * nrow), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (title, corr, init) in zip(axes.ravel(), panels):
        _corr_axis(ax, corr, "trained (mean)", "tab:purple", theory=corr["pos"] == "rope",
                   init=init)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def fig_attention_dynamics(panels: list[tuple[str, dict]], path) -> str:
    """Figure 6b / 9 right: mean softmaxed attention weight from [M] to the cue, forward
    contexts "[M] ... B" vs reverse contexts "B ... [M]", over training (raw weights; seed mean
    with min-max band over seeds), and the raw scores below."""
    plt = _plt()
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(5.0 * n, 6.4), squeeze=False)
    for j, (title, c) in enumerate(panels):
        for row, kind in ((0, "weight"), (1, "score")):
            ax = axes[row, j]
            for key, col, lab in ((f"attn_fwd_{kind}", FWD, '"[M] ... B" (forward)'),
                                  (f"attn_rev_{kind}", REV, '"B ... [M]" (reverse)')):
                v = c[key]
                ax.plot(c["step"], np.nanmean(v, 0), color=col, label=lab)
                if v.shape[0] > 1:
                    ax.fill_between(c["step"], np.nanmin(v, 0), np.nanmax(v, 0), color=col,
                                    alpha=0.2)
            ax.set_xlabel("training step")
            ax.set_ylabel(f"attention {kind} [M] -> B" + (" (raw q^T R k)" if kind == "score"
                                                           else " (softmaxed)"))
            if row == 0:
                ax.set_title(title, fontsize=10)
                ax.legend(fontsize=8)
    return _save(fig, path)


def fig_reverse_over_training(panels: list[tuple[str, dict]], path, mark_step: int | None = 3000
                              ) -> str:
    """Infill metrics over training, raw (solid) and EMA (dashed) weights: mean p(target) and
    greedy accuracy, forward and reverse (one column per run/model), and the letter-level
    greedy accuracy (pad '0' excluded) as a third row when the runs tracked it."""
    plt = _plt()
    n = len(panels)
    metrics = ["p_target", "greedy_acc"]
    if any(not np.all(np.isnan(c.get("infill_rev_letter_greedy_acc", np.nan)))
           for _, c in panels):
        metrics.append("letter_greedy_acc")
    fig, axes = plt.subplots(len(metrics), n, figsize=(5.0 * n, 3.2 * len(metrics)),
                             squeeze=False)
    for j, (title, c) in enumerate(panels):
        for row, metric in enumerate(metrics):
            ax = axes[row, j]
            for d, col in (("fwd", FWD), ("rev", REV)):
                for pre, ls in (("", "-"), ("ema_", "--")):
                    a = c.get(f"{pre}infill_{d}_{metric}")
                    if a is None or np.all(np.isnan(a)):
                        continue
                    v = np.nanmean(a, 0)
                    ax.plot(c["step"], v, color=col, ls=ls,
                            label=f"{'forward' if d == 'fwd' else 'reverse'} "
                                  f"{'EMA' if pre else 'raw'}")
            if mark_step and c["step"][-1] > mark_step:
                ax.axvline(mark_step, color="k", lw=0.6, ls=":")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("training step")
            ax.set_ylabel("infill " + metric.replace("letter_", "letter-level ")
                          .replace("_", " "))
            if row == 0:
                ax.set_title(title, fontsize=10)
                ax.legend(fontsize=7)
    return _save(fig, path)


def fig_probabilities(panels: list[tuple[str, dict]], path) -> str:
    """Figure 5: reverse infill queries, per target (lowercase) position: p(correct
    lowercase) (red), max p(any other letter) (black), p(pad '0') (gray); at most 4 panels
    per row."""
    plt = _plt()
    n = len(panels)
    ncol = min(4, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.0 * ncol, 3.8 * nrow), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, (title, p) in zip(axes.ravel(), panels):
        b = p["by_target_pos"]
        x = np.arange(len(b["p_target"]))
        ax.plot(x, b["p_target"], "o-", color="tab:red", label="p(correct lowercase)")
        ax.plot(x, b["p_max_other"], "s-", color="k", label="max p(other letter)")
        ax.plot(x, b["p_pad"], "^-", color="gray", label="p('0')")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("position of the target lowercase")
        ax.set_ylabel("probability (mean over reverse queries)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    return _save(fig, path)


READINGS = (("infill", "", "infill, greedy: all outputs (pad '0' included)"),
            ("infill_letter", "letter_", "infill_letter, greedy: the 52 letters ('0' excluded)"))



def _nanmean(curves_SxT):
    """Mean over seeds ignoring NaN (steps a seed did not track); NaN where none did, silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(curves_SxT, 0)

def fig_reverse_readings(panels: list[tuple[str, dict]], path) -> str:
    """Forward and reverse infill greedy accuracy over training in both readings (rows: with
    the pad output, letter-level), one column per model (`analysis.curves` dicts): seed mean of
    raw (solid) and EMA (dashed) weights, and each seed's raw weights (thin lines)."""
    plt = _plt()
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(5.0 * n, 6.4), squeeze=False)
    for j, (title, c) in enumerate(panels):
        for row, (_, infix, label) in enumerate(READINGS):
            ax = axes[row, j]
            drawn = False
            for d, col in (("fwd", FWD), ("rev", REV)):
                raw, ema = c.get(f"infill_{d}_{infix}greedy_acc"), \
                    c.get(f"ema_infill_{d}_{infix}greedy_acc")
                if raw is None or np.all(np.isnan(raw)):
                    continue
                drawn = True
                name = "forward" if d == "fwd" else "reverse"
                for seed_curve in raw if raw.shape[0] > 1 else ():
                    ax.plot(c["step"], seed_curve, color=col, lw=0.5, alpha=0.35)
                ax.plot(c["step"], _nanmean(raw), color=col, lw=1.8,
                        label=f"{name} raw (mean of {raw.shape[0]} seeds)")
                if ema is not None and not np.all(np.isnan(ema)):
                    ax.plot(c["step"], _nanmean(ema), color=col, ls="--",
                            label=f"{name} EMA (mean)")
            if not drawn:
                ax.text(0.5, 0.5, "not tracked in this run", ha="center", va="center",
                        transform=ax.transAxes)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("training step")
            ax.set_ylabel("greedy accuracy")
            ax.set_title(f"{title}\n{label}" if row == 0 else label, fontsize=9)
            if drawn:
                ax.legend(fontsize=7)
    return _save(fig, path)


def write_run_figures(run_dir, out_dir=None) -> list[str]:
    """The figures of one run directory, drawn from its files alone (metrics.jsonl, config.json,
    results.json and the checkpoints), into OUT/figures/ by default:

    * `reverse_over_training.png`: forward and reverse infill greedy accuracy over training
      in both readings (`fig_reverse_readings`), when the run tracked them;
    * `fig5_probabilities.png`: Figure 5 for every model and seed at the end of training,
      with the headline weights (EMA for the MDM, raw for the ARM).

    Returns the paths written.
    """
    from toy_jax import analysis  # lazy (with rundir): they load jax
    from toy_jax.rundir import HEADLINE, load_run

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "figures"
    run = load_run(run_dir)
    cfg = run.config
    written = []
    rows = run.metrics()
    panels = []
    for spec in cfg.models:
        try:
            c = analysis.curves(rows, spec.name)
        except ValueError:  # tracking was off
            continue
        panels.append((f"{spec.name.upper()}, L = {cfg.L}, preset {cfg.preset}", c))
    if panels:
        written.append(fig_reverse_readings(panels, out_dir / "reverse_over_training.png"))
    fig5 = []
    for spec in cfg.models:
        if spec.name not in run.states:
            continue
        ema = HEADLINE[spec.objective] == "ema"
        for seed in cfg.seeds:
            p = analysis.reverse_probabilities(run.model(spec.name, seed, ema=ema),
                                               spec.objective)
            fig5.append((f"{spec.name.upper()} seed {seed} ({'EMA' if ema else 'raw'}), "
                         f"step {run.step(spec.name)}", p))
    if fig5:
        written.append(fig_probabilities(fig5, out_dir / "fig5_probabilities.png"))
    return written


def fig_assumptions(a: dict, path, title: str = "") -> str:
    """Theorem 4.1's assumptions in a trained model: per-block w_i, fitted rho_i and eigenvector
    alignment vs frequency index, and the correlation predicted by each relaxation."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.0))
    b = a["blocks"]
    i = np.arange(a["n_blocks"])
    ax = axes[0]
    ax.bar(i, b["w"], color="tab:green")
    ax.axhline(1.0 / a["n_blocks"], color="k", ls="--", lw=0.8, label="isotropic mean 1/m")
    ax.set_xlabel(r"RoPE block i ($\theta_i$ = base$^{-2i/D}$)")
    ax.set_ylabel(r"$w_i = \|q_i\|^2 / \|q\|^2$")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(i, b["rho"], ".", color="tab:purple", label=r"fitted $\rho_i$")
    ax.plot(i, b["align_top_eigvec"], ".", color="tab:olive",
            label=r"|cos| ($q_i$, top eigvec of $\Sigma_i$)")
    ax.plot(i, b["anisotropy"], ".", color="tab:gray", label=r"anisotropy $(\lambda_1-\lambda_2)/\mathrm{tr}$")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("RoPE block i")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=7)
    ax = axes[2]
    c = a["by_delta_sum"]
    for key, style, lab in (("measured", "-", "measured (26 letters)"),
                            ("blockdiag", "-.", r"block-diagonal $\Sigma$"),
                            ("theorem", ":", r"theorem model, fitted $\rho$ clipped to [0,1]"),
                            ("rho0", "--", r"$\rho=0$: $\sum_i w_i\cos((\Delta_1+\Delta_2)\theta_i)$"),
                            ("trace", "k--", r"$\frac{1}{D}\mathrm{Tr}R(\Delta_1+\Delta_2)$")):
        ax.plot(c["delta_sum"], c[key], style, label=lab)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(r"$\Delta_1 + \Delta_2$")
    ax.set_ylabel("correlation")
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
