"""Figures of the theory report, drawn only from the report dict (the content of report.json)."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODE_STYLE = {"0": "C0", "1": "C1", "uniform": "C2", "adversarial": "C3"}


def _by_id(report: dict, i: int) -> dict:
    return next(r for r in report["checks"] if r["id"] == i)


def fig_closed_form(report: dict, path: str) -> None:
    rows = _by_id(report, 1)["data"]["rows"] + _by_id(report, 5)["data"]["mc_rows"]
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    cf = [r["closed_form"] for r in rows]
    ax.scatter(cf, [r["monte_carlo"] for r in rows], s=14,
               c=["C0" if r["delta1"] == r["delta2"] else "C3" for r in rows])
    lo, hi = min(cf + [0.0]), 1.0
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("closed form Corr (Appendix C.1)")
    ax.set_ylabel("Monte-Carlo Corr (sampled k)")
    ax.set_title("Check 1/5: blue D1 = D2, red D1 != D2", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig_theorem41(report: dict, path: str) -> None:
    data = _by_id(report, 2)["data"]
    dims = list(data["per_dim"])
    ncol = min(len(dims), 3)
    nrow = -(-len(dims) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow), sharey=True, squeeze=False)
    for ax in axes.flat[len(dims):]:
        ax.set_visible(False)
    for ax, D in zip(axes.flat, dims):
        pd = data["per_dim"][D]
        for mode, col in MODE_STYLE.items():
            ax.plot(data["deltas"], pd[mode]["mean"], color=col, lw=1, label=f"rho={mode}")
        ax.plot(data["deltas"], pd["bound"], "k--", lw=1, label="(1/D) Tr R(2 Delta)")
        ax.set_title(f"D = {D}", fontsize=9)
        ax.set_xlabel("Delta")
    for row in axes:
        row[0].set_ylabel("E_q[Corr]")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_eq1(report: dict, path: str) -> None:
    r = _by_id(report, 3)
    data, const = r["data"], r["numbers"]["constant"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for D, v in data["finite"].items():
        a1.plot([2 * d for d in data["deltas"]], v["values"], lw=0.9, label=f"D = {D}")
    a1.plot(data["x_integral"], data["integral"], "k-", lw=2, label="integral (Ci)")
    a1.axhline(const, color="r", ls="--", lw=1, label=f"Eq. (1) constant {const:.3f}")
    a1.set_xlabel("x = 2 Delta")
    a1.set_ylabel("(1/D) Tr R(x)")
    a1.legend(fontsize=6)
    a2.loglog(data["err_dims"], data["max_err"], "o-", label="max |sum - integral|, x in [1, 100]")
    a2.loglog(data["err_dims"], data["euler_maclaurin"], "--", label="first-order term max |cos x - cos(x/base)| / D")
    a2.set_xlabel("D")
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_table4(report: dict, path: str) -> None:
    d = _by_id(report, 4)["data"]
    ms = list(d["exact"])
    fig, axes = plt.subplots(1, len(ms), figsize=(5 * len(ms), 3.6), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], ms):
        for i, delta in enumerate(d["deltas"]):
            col = f"C{i}"
            ax.plot(d["cs"], d["exact"][m][i], "-", color=col, lw=1, label=f"Delta={delta}")
            ax.plot(d["cs"], d["printed"][m][i], "x", color=col, ms=5)
            ax.plot(d["cs"], d["mc"][m]["p"][i], ":", color=col, lw=1.2)
        ax.set_title(f"m = {m}: line bound, x printed, dotted Monte Carlo", fontsize=8)
        ax.set_xlabel("c")
    axes[0][0].set_ylabel("Pr[Corr >= c] lower bound")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_asymmetric(report: dict, path: str) -> None:
    res = _by_id(report, 5)["data"]["results"]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for mode, col in MODE_STYLE.items():
        rows = [r for r in res if r["rho"] == mode]
        ax.scatter([r["delta1"] + r["delta2"] for r in rows], [r["slack"] for r in rows], s=10,
                   color=col, label=f"rho={mode}", alpha=0.7)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("Delta1 + Delta2")
    ax.set_ylabel("E_q[Corr] - (1/D) Tr R(Delta1 + Delta2)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


FIGURES = {
    "fig1_closed_form_vs_mc.png": fig_closed_form,
    "fig2_theorem41_bound.png": fig_theorem41,
    "fig3_eq1_riemann.png": fig_eq1,
    "fig4_table4_cantelli.png": fig_table4,
    "fig5_asymmetric_slack.png": fig_asymmetric,
}


def write_figures(report: dict, out_dir: str) -> list[str]:
    """Write every figure into out_dir; returns the file names."""
    for name, fn in FIGURES.items():
        fn(report, os.path.join(out_dir, name))
    return list(FIGURES)
