"""Figures of the theory report, drawn only from the report dict (the content of report.json)."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

# rho = 0 and the adversarial rho (= 0, see check 2) sit on the bound: dashed/dotted with markers on
# top of a wide light bound line, so all three stay visible.
MODE_STYLE = {
    "0": dict(color="C0", ls="--", marker="o", label=r"$\rho = 0$"),
    "1": dict(color="C1", ls="-", marker=None, label=r"$\rho = 1$"),
    "uniform": dict(color="C2", ls="-", marker=None, label=r"$\rho$ i.i.d. uniform"),
    "adversarial": dict(color="C3", ls=":", marker="x", label=r"adversarial $\rho(q)$"),
}
DIM_STYLE = [("C0", "o"), ("C1", "s"), ("C2", "^"), ("C3", "D"), ("C4", "v"), ("C5", "P")]
BOUND_STYLE = dict(color="0.6", lw=4, alpha=0.6, solid_capstyle="butt", zorder=1)


def _by_id(report: dict, i: int) -> dict:
    return next(r for r in report["checks"] if r["id"] == i)


def _save(fig, path: str, dpi: int = 110) -> None:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def fig_closed_form(report: dict, path: str) -> None:
    rows = _by_id(report, 1)["data"]["rows"] + _by_id(report, 5)["data"]["mc_rows"]
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    cf_all = [r["closed_form"] for r in rows]
    for same, col, mk, lab in ((True, "C0", "o", r"$\Delta_1 = \Delta_2$ (check 1)"),
                               (False, "C3", "^", r"$\Delta_1 \neq \Delta_2$ (check 5)")):
        sel = [r for r in rows if (r["delta1"] == r["delta2"]) == same]
        ax.scatter([r["closed_form"] for r in sel], [r["monte_carlo"] for r in sel], s=16,
                   color=col, marker=mk, label=lab, zorder=3)
    lo, hi = min(cf_all + [0.0]), 1.0
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x", zorder=2)
    ax.set_xlabel("closed-form Corr (Appendix C.1)")
    ax.set_ylabel("Monte-Carlo Corr (sampled k)")
    ax.set_title("Closed form vs sampling", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path, dpi=120)


def fig_theorem41(report: dict, path: str) -> None:
    data = _by_id(report, 2)["data"]
    dims = list(data["per_dim"])
    ncol = min(len(dims), 3)
    nrow = -(-len(dims) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow), sharey=True, squeeze=False)
    for ax in axes.flat[len(dims):]:
        ax.set_visible(False)
    x = data["deltas"]
    every = max(1, len(x) // 10)
    for ax, D in zip(axes.flat, dims):
        pd = data["per_dim"][D]
        ax.plot(x, pd["bound"], label=r"bound $(1/D)\,\mathrm{Tr}\,R(2\Delta)$", **BOUND_STYLE)
        for k, (mode, st) in enumerate(MODE_STYLE.items()):
            ax.plot(x, pd[mode]["mean"], color=st["color"], ls=st["ls"], marker=st["marker"], ms=4,
                    markevery=(k * every // 4, every), mfc="none", lw=1, label=st["label"], zorder=3)
        ax.set_title(f"D = {D}", fontsize=9)
        ax.set_xlabel(r"$\Delta$")
    for row in axes:
        row[0].set_ylabel(r"$E_q[\mathrm{Corr}]$")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(labels), fontsize=8,
               frameon=False)
    _save(fig, path)


def fig_eq1(report: dict, path: str) -> None:
    r = _by_id(report, 3)
    data, const = r["data"], r["numbers"]["constant"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(data["x_integral"], data["integral"], label="integral (Ci)", **BOUND_STYLE)
    for k, (D, v) in enumerate(data["finite"].items()):
        ls = "-" if int(D) < 1024 else (0, (4, 2 + 2 * (k % 2)))  # large D lies on the integral: dashed
        a1.plot([2 * d for d in data["deltas"]], v["values"], lw=0.9, ls=ls, label=f"D = {D}", zorder=3)
    a1.axhline(const, color="r", ls="--", lw=1, label=f"Eq. (1) constant {const:.3f}")
    a1.set_xlabel(r"$x = 2\Delta$")
    a1.set_ylabel(r"$(1/D)\,\mathrm{Tr}\,R(x)$")
    a1.set_title("finite-D sums vs the integral", fontsize=9)
    a1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    a2.loglog(data["err_dims"], data["max_err"], "o-", label=r"max $|$sum $-$ integral$|$, $x \in [1, 100]$")
    a2.loglog(data["err_dims"], data["euler_maclaurin"], "--",
              label=r"first-order term max$|\cos x - \cos(x/\mathrm{base})|/D$")
    a2.set_xlabel("D")
    a2.set_ylabel(r"max$_x$ |Riemann sum $-$ integral|")
    a2.set_title("Riemann-sum error", fontsize=9)
    a2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    fig.tight_layout()
    _save(fig, path)


def fig_table4(report: dict, path: str) -> None:
    d = _by_id(report, 4)["data"]
    ms = list(d["exact"])
    fig, axes = plt.subplots(1, len(ms), figsize=(5 * len(ms), 3.6), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], ms):
        for i, delta in enumerate(d["deltas"]):
            col = f"C{i}"
            ax.plot(d["cs"], d["exact"][m][i], "-", color=col, lw=1, label=rf"$\Delta$ = {delta}")
            ax.plot(d["cs"], d["printed"][m][i], "x", color=col, ms=5)
            ax.plot(d["cs"], d["mc"][m]["p"][i], ":", color=col, lw=1.2)
        ax.set_title(f"m = {m}: line bound, x printed, dotted Monte Carlo", fontsize=8)
        ax.set_xlabel("c")
    axes[0][0].set_ylabel(r"Pr[Corr $\geq$ c] lower bound")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(labels), fontsize=8,
               frameon=False)
    _save(fig, path)


def fig_asymmetric(report: dict, path: str) -> None:
    res = _by_id(report, 5)["data"]["results"]
    fixed = next((r for r in report["checks"] if r.get("name") == "delta1_ne_delta2_fixed_rho"), None)
    dims = sorted({r["D"] for r in res})
    panels = [(mode, st["label"], [r for r in res if r["rho"] == mode]) for mode, st in MODE_STYLE.items()]
    if fixed is not None:
        rho_txt = ",".join(f"{x:g}" for x in fixed["numbers"]["rho"])
        grid = [dict(g, D=fixed["numbers"]["D"], slack=g["mean"] - g["bound"]) for g in fixed["data"]["grid"]]
        panels.append(("fixed", rf"fixed $\rho$ = ({rho_txt}) (check 6)", grid))
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.2), sharey=True)
    xs = [r["delta1"] + r["delta2"] for _, _, rows in panels for r in rows]
    for ax, (mode, title, rows) in zip(axes.flat, panels):
        for D, (col, mk) in zip(dims, DIM_STYLE):
            sel = [r for r in rows if r["D"] == D]
            if sel:
                ax.scatter([r["delta1"] + r["delta2"] for r in sel], [r["slack"] for r in sel], s=14,
                           color=col, marker=mk, alpha=0.75, label=f"D = {D}", zorder=3)
        ax.axhline(0.0, color="k", lw=0.8, zorder=2)
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.3, max(xs) * 1.3)
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(r"$\Delta_1 + \Delta_2$")
    for row in axes:
        row[0].set_ylabel(r"$E_q[\mathrm{Corr}] - (1/D)\,\mathrm{Tr}\,R(\Delta_1 + \Delta_2)$", fontsize=8)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=c, marker=mk, ls="none", label=f"D = {D}") for D, (c, mk) in zip(dims, DIM_STYLE)]
    fig.suptitle(r"$\Delta_1 \neq \Delta_2$: slack of the analogue bound (below 0 = bound fails)", fontsize=10)
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8,
               frameon=False)
    _save(fig, path)


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
