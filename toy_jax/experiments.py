"""Named variants and grids of the toy experiment, and one runner for any grid.

A `Variant` is a name plus typed config overrides (and which models it trains); a `Grid` is
variants x L x seeds. Each cell (variant, L) is one run directory, OUT/<variant>/L<L>, trained
by `rundir.run_experiment` with all seeds vmapped in one program. The runner is resumable:
a cell whose results.json exists for exactly its config is finished and skipped; a cell whose
directory holds another config is refused (`rundir.RunDirError`). After the cells it writes
the grid's verdict file (`toy_jax.verdict`).

    python scripts/toy_grid.py --grid table2_verdict --preset quick --out runs/verdict_quick
    python scripts/toy_grid.py --grid table2_verdict --preset paper --dry-run
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from toy_jax import configs as C


@dataclass(frozen=True)
class Variant:
    """One named departure from the preset: typed overrides of `ModelConfig` / `TrainConfig`
    fields, applied to the models `model` names (mdm | arm | both)."""

    name: str
    note: str
    model: str = "both"
    model_overrides: dict = field(default_factory=dict)
    train_overrides: dict = field(default_factory=dict)

    def config(self, L: int, preset: str, seeds) -> C.RunConfig:
        return C.make_config(L=L, preset=preset, model=self.model, seeds=tuple(seeds),
                             model_overrides=dict(self.model_overrides),
                             train_overrides=dict(self.train_overrides))


VARIANTS = {v.name: v for v in (
    Variant("baseline", "the preset (MDM: t-DCE loss, 53 outputs; ARM: next-token loss)"),
    Variant("arm_rope", "the ARM with RoPE only (no absolute positions), the quick preset's "
            "ARM before it got learned positions", model="arm", model_overrides={"pos": "rope"}),
    Variant("lambda_dce", "RADD's lambda-DCE estimator of the MDM loss: k ~ U{1..L} masked "
            "tokens, weight L/k", model="mdm", train_overrides={"loss": "lambda_dce"}),
    Variant("vocab_gpt2", "output layer over GPT-2's 50,257 classes (53 used by the toy)",
            model="mdm", model_overrides={"vocab_size": 50257}),
    Variant("vocab_1k", "output layer over 1,024 classes (53 used): the vocabulary question at "
            "a size a CPU trains in minutes", model="mdm", model_overrides={"vocab_size": 1024}),
)}


@dataclass(frozen=True)
class Grid:
    name: str
    variants: tuple[str, ...]
    Ls: tuple[int, ...] = (10, 20, 30, 40)
    n_seeds: int = 8


GRIDS = {g.name: g for g in (
    # Table 2 with both models at every L, and the open explanations of the reverse number
    Grid("table2_verdict", ("baseline", "lambda_dce", "vocab_gpt2")),
    # what the 2-core CPU can run: the GPT-2-sized head costs ~50x the quick step there
    Grid("table2_verdict_cpu", ("baseline", "arm_rope", "lambda_dce", "vocab_1k")),
)}


def cell_dir(out: Path, variant: str, L: int) -> Path:
    return Path(out) / variant / f"L{L}"


def cells(grid: Grid, preset: str, Ls=None, n_seeds: int | None = None, variants=None):
    """[(variant name, L, RunConfig)] of a grid, in run order (by L, then variant)."""
    seeds = tuple(range(n_seeds or grid.n_seeds))
    names = variants or grid.variants
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {sorted(VARIANTS)}")
    return [(v, L, VARIANTS[v].config(L, preset, seeds)) for L in (Ls or grid.Ls) for v in names]


def is_finished(cfg: C.RunConfig, out: Path) -> bool:
    """The one 'finished' rule: results.json and config.json exist and the config is `cfg`."""
    try:
        old = C.RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return old == cfg and (out / "results.json").is_file()


def step_gflop(cfg: C.RunConfig) -> float:
    """Approximate GFLOP of one training step of every model and seed (forward + backward)."""
    m, t, L = cfg.model, cfg.train, cfg.L
    d, f, V = m.d_model, m.d_model * m.mlp_ratio, m.n_outputs
    per_token = 4 * d * d + 2 * d * f + 2 * L * d + d * V  # MACs
    return 6.0 * per_token * t.batch_size * L * len(cfg.seeds) * len(cfg.models) / 1e9


# Effective training throughputs for the dry-run estimate: the 2-core development CPU, and one
# H200 (the paper-preset Table 2, 4 L x 2 models x 3 seeds, trained and evaluated in 246 s).
THROUGHPUT_GFLOP_S = {"cpu": 70.0, "gpu": 9000.0}


def describe(grid_cells, out: Path) -> str:
    """The dry-run listing: one line per cell with its state and a training-time estimate on
    the development CPU and on one GPU (`THROUGHPUT_GFLOP_S`; evaluation is extra)."""
    lines, left = [], 0.0
    for v, L, cfg in grid_cells:
        d = cell_dir(out, v, L)
        gf = step_gflop(cfg) * cfg.train.steps
        state = "finished" if is_finished(cfg, d) else "to run"
        left += 0.0 if state == "finished" else gf
        lines.append(f"{v:<12} L={L:<3} models={','.join(m.name for m in cfg.models):<8} "
                     f"seeds={len(cfg.seeds)} steps={cfg.train.steps} "
                     f"~{gf / THROUGHPUT_GFLOP_S['cpu'] / 60:.0f} min CPU, "
                     f"~{gf / THROUGHPUT_GFLOP_S['gpu'] / 60:.1f} min GPU  {state}  {d}")
    lines.append(f"{len(grid_cells)} cells; training left: about "
                 f"{left / THROUGHPUT_GFLOP_S['cpu'] / 60:.0f} min on the 2-core CPU, "
                 f"{left / THROUGHPUT_GFLOP_S['gpu'] / 60:.1f} min on one H200")
    return "\n".join(lines)


def run_grid(grid_cells, out: Path, *, progress: bool = True, log=print) -> list[Path]:
    """Train and evaluate every unfinished cell; returns the cells' run directories."""
    from toy_jax.rundir import run_experiment

    dirs = []
    for v, L, cfg in grid_cells:
        d = cell_dir(out, v, L)
        dirs.append(d)
        if is_finished(cfg, d):
            log(f"{v} L={L}: finished, reused ({d})")
            continue
        t0 = time.perf_counter()
        run_experiment(cfg, d, progress=progress)
        log(f"{v} L={L}: done in {time.perf_counter() - t0:.0f} s ({d})")
    return dirs


def study(grid_name: str, preset: str, out: Path, *, Ls=None, n_seeds=None, variants=None,
          verdict: Path | None = None, dry_run: bool = False, progress: bool = True,
          command: str = "", log=print) -> dict | None:
    """Run a named grid (or list it with `dry_run`) and write its verdict record to `verdict`
    (default OUT/verdict.json). Returns the record (None on a dry run)."""
    from toy_jax import verdict as V
    from toy_jax.rundir import _write_atomic

    if grid_name not in GRIDS:
        raise ValueError(f"unknown grid {grid_name!r}; known: {sorted(GRIDS)}")
    grid_cells = cells(GRIDS[grid_name], preset, Ls, n_seeds, variants)
    if dry_run:
        log(describe(grid_cells, out))
        return None
    run_grid(grid_cells, out, progress=progress, log=log)
    every = cells(GRIDS[grid_name], preset, None, n_seeds)  # the verdict covers every finished
    rec = V.digest([(v, cell_dir(out, v, L)) for v, L, c in every  # cell of the grid
                    if is_finished(c, cell_dir(out, v, L))], command)
    path = Path(verdict) if verdict else Path(out) / "verdict.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(rec, separators=(",", ":")) + "\n")
    if rec["cells"]:
        log(f"figure: {V.plot(rec, path.with_suffix('.png'))}")
    log(V.forward_check(rec))
    log(f"verdict: {path}")
    return rec
