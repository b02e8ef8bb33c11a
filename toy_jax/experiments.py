"""Named variants and grids of the toy experiment, and one runner for any grid.

A `Variant` is a name plus typed config overrides (and which models it trains); a `Grid` is
variants x L x seeds. Each cell (variant, L) is one run directory, OUT/<variant>/L<L>, trained
by `rundir.run_experiment` with all seeds vmapped in one program. The runner is resumable:
a cell whose results.json exists for exactly its config is finished and skipped (`is_finished`,
the one "finished" rule); a cell whose directory holds another config is refused before any
cell runs (`check_cells`, the rule of `rundir.prepare_run_dir`; a larger step count alone
continues the run). Every cell's record is its run directory (config.json, metrics.jsonl,
results.json, checkpoints); the grid's record is one verdict file (`toy_jax.verdict.digest`).

Table 2, the ablations, the collapse-by-init study and the sweeps are named grids here
(`GRIDS`); a variant the registry lacks comes from the command line as NAME=FLAGS with
toy_jax/train.py's flags (`parse_variant`). Flags given to the runner itself apply to every
variant of the grid, a variant's own values win (`Variant.under`).

    python scripts/toy_grid.py --grid table2_verdict --preset quick --out runs/verdict_quick
    python scripts/toy_grid.py --grid table2_verdict --preset paper --dry-run
    python scripts/toy_grid.py --variant "radd=--model mdm --init radd" --L 10 --seeds 4
    python scripts/study.py --preset quick      # Table 2 + ablations + collapse + figures
"""
from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from plumbing import io
from toy_jax import configs as C
from toy_jax.train import build_parser, override_dicts


@dataclass(frozen=True)
class Variant:
    """One named departure from the preset: typed overrides of `ModelConfig` / `TrainConfig` /
    `EvalConfig` fields, applied to the models `model` names (mdm | arm | both); `attention` /
    `objective` override the mask / loss of those models (model='mdm', attention='causal' is
    the MDM objective on the causal decoder), as `configs.make_config` does."""

    name: str
    note: str
    model: str = "both"
    model_overrides: dict = field(default_factory=dict)
    train_overrides: dict = field(default_factory=dict)
    attention: str | None = None
    objective: str | None = None
    eval_overrides: dict = field(default_factory=dict)

    def config(self, L: int, preset: str, seeds) -> C.RunConfig:
        return C.make_config(L=L, preset=preset, model=self.model, seeds=tuple(seeds),
                             attention=self.attention, objective=self.objective,
                             model_overrides=dict(self.model_overrides),
                             train_overrides=dict(self.train_overrides),
                             eval_overrides=dict(self.eval_overrides))

    def under(self, overrides: tuple[dict, dict, dict] | None) -> "Variant":
        """This variant over grid-wide (model, train, eval) overrides; its own values win."""
        if not overrides or not any(overrides):
            return self
        mo, to, eo = overrides
        return replace(self, model_overrides={**mo, **self.model_overrides},
                       train_overrides={**to, **self.train_overrides},
                       eval_overrides={**eo, **self.eval_overrides})


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
    # the ablations of the paper's account of reverse inference (RoPE-coupled attention); the
    # baselines (MDM and ARM with the preset's positions) are `baseline`
    Variant("mdm_learned", "MDM, learned absolute positions instead of RoPE", model="mdm",
            model_overrides={"pos": "learned"}),
    Variant("mdm_nopos", "MDM without any position information", model="mdm",
            model_overrides={"pos": "none"}),
    Variant("mdm_causal", "the MDM objective on the causal decoder (only the mask changes)",
            model="mdm", attention="causal"),
    Variant("arm_learned", "ARM, learned absolute positions for every model (the paper's GPT-2 "
            "has them)", model="arm", model_overrides={"pos": "learned"}),
    Variant("mdm_raddinit", "MDM with RADD's initialisation (collapses some seeds at the paper "
            "preset); the collapse study's init=radd", model="mdm",
            model_overrides={"init": "radd"}),
    # the initialisation sweep (README: GPU commands): RADD's init and one knob at a time
    Variant("mdm_standard", "MDM alone with GPT-2's initialisation (the default)", model="mdm",
            model_overrides={"init": "standard"}),
    Variant("radd_learned", "RADD's init, learned positions", model="mdm",
            model_overrides={"init": "radd", "pos": "learned"}),
    Variant("radd_emb1", "RADD's init, embeddings N(0, 1)", model="mdm",
            model_overrides={"init": "radd", "embed_init": "normal"}),
    Variant("radd_lnb0", "RADD's init, LayerNorm biases 0", model="mdm",
            model_overrides={"init": "radd", "ln_bias": 0.0}),
    Variant("radd_vdm", "RADD's init, stratified (low-discrepancy) t", model="mdm",
            model_overrides={"init": "radd"}, train_overrides={"t_sampler": "stratified"}),
)}


@dataclass(frozen=True)
class Grid:
    name: str
    variants: tuple[str, ...]
    Ls: tuple[int, ...] = (10, 20, 30, 40)
    n_seeds: int = 8
    note: str = ""


GRIDS = {g.name: g for g in (
    # Table 2 with both models at every L, and the open explanations of the reverse number
    Grid("table2_verdict", ("baseline", "lambda_dce", "vocab_gpt2")),
    # what the 2-core CPU can run: the GPT-2-sized head costs ~50x the quick step there
    Grid("table2_verdict_cpu", ("baseline", "arm_rope", "lambda_dce", "vocab_1k")),
    Grid("table2", ("baseline",), note="Table 2: MDM and ARM at L = 10, 20, 30, 40"),
    # The ablations at L = 10 and 20 with Table 2's 8 seeds (the paper's Table 2 seeds; fewer
    # would leave the Δ vs baseline within its s.e.): the ablated mechanisms (positions, mask,
    # init) act at every L, and on the 2-core CPU these ten one-model cells take 35-50 min
    # (`describe`; 1,500 or 3,000 MDM steps) where L = 30 and 40 would add 2-3 h, so the quick
    # study stays within about 1.5-2 h unattended. Their baselines are Table 2's cells.
    # The ARM's positions ablation is the scheme the preset's ARM lacks: learned positions under
    # the paper preset (RoPE ARM), RoPE only under the quick one (learned-position ARM); the
    # other variant equals the baseline there and is left out (`same_as_baseline`).
    Grid("ablations", ("baseline", "mdm_learned", "mdm_nopos", "mdm_causal", "arm_learned",
                       "arm_rope", "mdm_raddinit"), Ls=(10, 20),
         note="the paper's account tested: positions, mask, init (baselines = Table 2's cells)"),
    # collapse by initialisation: GPT-2's (the default, baseline) against RADD's, the cells of
    # the ablations (no extra training); 8 seeds per L
    Grid("collapse", ("baseline", "mdm_raddinit"), Ls=(10, 20),
         note="seeds that do not learn the forward rule, init=standard vs init=radd"),
    # the initialisation sweep of the paper preset on one GPU (run with --track-every 50)
    Grid("init_sweep", ("mdm_raddinit", "mdm_standard", "radd_learned", "radd_emb1",
                        "radd_lnb0", "radd_vdm"), Ls=(20,),
         note="RADD's init and one knob at a time, MDM only"),
)}


# ---------------------------------------------------------------- ad-hoc variants
RESERVED = {"L": "--L", "seed": "--seed", "preset": "--preset", "out": "--out",
            "no_progress": "--no-progress"}  # set by the grid, not per variant
_UNSET = object()


def parse_variant(spec: str) -> Variant:
    """A Variant from NAME=FLAGS, FLAGS being toy_jax/train.py's (--model, --attention,
    --objective and every override flag; default model: both). Raises ValueError."""
    name, eq, flags = spec.partition("=")
    name = name.strip()
    if not eq or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"--variant {spec!r}: expected NAME=FLAGS with NAME of letters, digits, "
                         "'_', '-', '.'")
    if name in VARIANTS:
        raise ValueError(f"--variant {name!r}: the registry has a variant of that name; "
                         "choose another")
    p = build_parser()

    def error(message):
        raise ValueError(f"variant {name!r}: {message}")

    p.error = error
    p.set_defaults(**{dest: _UNSET for dest in RESERVED})
    try:
        ns = p.parse_args(shlex.split(flags))
    except SystemExit as e:  # --help
        raise ValueError(f"variant {name!r}: flags {flags!r} exit train.py's parser") from e
    for dest, flag in RESERVED.items():
        if getattr(ns, dest) is not _UNSET:
            raise ValueError(f"variant {name!r}: {flag} is set by the grid for every variant")
    mo, to, eo = override_dicts(ns)
    return Variant(name, f"--variant {name}={flags}", model=ns.model, attention=ns.attention,
                   objective=ns.objective, model_overrides=mo, train_overrides=to,
                   eval_overrides=eo)


# ---------------------------------------------------------------- cells and the runner
def cell_dir(out: Path, variant: str, L: int) -> Path:
    return Path(out) / variant / f"L{L}"


def cells(grid: Grid, preset: str, Ls=None, n_seeds: int | None = None, variants=None, *,
          registry: dict | None = None, overrides=None):
    """[(variant name, L, RunConfig)] of a grid, in run order (by L, then variant).
    `registry` adds ad-hoc variants to `VARIANTS`; `overrides` = grid-wide (model, train,
    eval) overrides under every variant's own (`Variant.under`). Raises ValueError for an
    unknown variant or a bad config, before anything runs."""
    reg = {**VARIANTS, **(registry or {})}
    seeds = tuple(range(n_seeds or grid.n_seeds))
    names = variants or grid.variants
    unknown = [v for v in names if v not in reg]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {sorted(reg)}")
    if len(set(names)) != len(names) or (Ls and len(set(Ls)) != len(Ls)):
        raise ValueError(f"duplicate variants or L: {list(names)}, {list(Ls or [])}")
    out = []
    for L in (Ls or grid.Ls):
        base = reg["baseline"].under(overrides).config(L, preset, seeds)
        for v in names:
            try:
                cfg = reg[v].under(overrides).config(L, preset, seeds)
            except ValueError as e:
                raise ValueError(f"variant {v!r} at L={L}: {e}") from e
            if v == "baseline" or "baseline" not in names or not same_as_baseline(cfg, base):
                out.append((v, L, cfg))
    return out


def same_as_baseline(cfg: C.RunConfig, base: C.RunConfig) -> bool:
    """Whether every model of `cfg` is the baseline's model of that name, trained and read the
    same way (the resolved model and train configs, the seeds, the evaluation): a variant that changes nothing under this preset (e.g. `arm_learned` under the
    quick preset, whose ARM already has learned positions). Its cells would repeat the
    baseline's, so `cells` leaves them out (`left_out` names them)."""
    names = {m.name for m in base.models}
    return (cfg.eval == base.eval and cfg.seeds == base.seeds
            and all(m.name in names and cfg.configs_for(m.name) == base.configs_for(m.name)
                    for m in cfg.models))


def left_out(grid_cells, names) -> list[str]:
    """The variants of `names` that have no cell in `grid_cells` (what `cells` returned for
    them): those equal to the baseline under the preset (`same_as_baseline`)."""
    kept = {v for v, _, _ in grid_cells}
    return [v for v in dict.fromkeys(names) if v not in kept]


def is_finished(cfg: C.RunConfig, out: Path) -> bool:
    """The one 'finished' rule: results.json and config.json exist and the config is `cfg`."""
    try:
        old = C.RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return old == cfg and (out / "results.json").is_file()


def cell_state(cfg: C.RunConfig, out: Path) -> str:
    """'finished' | 'to run' | 'continues' (an unfinished run of cfg, or of it with fewer
    steps) | 'refused: ...' (another config, or not a run directory: `prepare_run_dir`'s rule)."""
    from toy_jax.rundir import _diff, _extends  # lazy: rundir loads jax

    if is_finished(cfg, out):
        return "finished"
    path = Path(out) / "config.json"
    if not path.exists():
        busy = Path(out).exists() and any(Path(out).iterdir())
        return "refused: not empty, no config.json" if busy else "to run"
    try:
        old = C.RunConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        return f"refused: unreadable config.json ({e})"
    if old == cfg or _extends(old, cfg):
        return "continues"
    return f"refused: another config ({_diff(old.to_dict(), cfg.to_dict())})"


def check_cells(grid_cells, out: Path) -> None:
    """Refuse (RunDirError) before anything runs when a cell's directory holds another run."""
    from toy_jax.rundir import RunDirError

    for v, L, cfg in grid_cells:
        state = cell_state(cfg, cell_dir(out, v, L))
        if state.startswith("refused"):
            raise RunDirError(f"{cell_dir(out, v, L)} {state[len('refused: '):]}; use another "
                              "--out or remove it")


def model_steps(cfg: C.RunConfig, name: str) -> int:
    """Training steps of one model of a run (a model may have its own, `ModelSpec.steps`)."""
    return getattr(cfg.spec(name), "steps", None) or cfg.train.steps


def step_gflop(cfg: C.RunConfig) -> float:
    """Approximate GFLOP of one training step of every model and seed (forward + backward)."""
    m, t, L = cfg.model, cfg.train, cfg.L
    d, f, V = m.d_model, m.d_model * m.mlp_ratio, m.n_outputs
    per_token = 4 * d * d + 2 * d * f + 2 * L * d + d * V  # MACs
    return 6.0 * per_token * t.batch_size * L * len(cfg.seeds) * len(cfg.models) / 1e9


# Effective training throughputs for the dry-run estimate: the 2-core development CPU, and one
# H200 (the paper-preset Table 2, 4 L x 2 models x 3 seeds, trained and evaluated in 246 s).
THROUGHPUT_GFLOP_S = {"cpu": 70.0, "gpu": 9000.0}
# The 2-core CPU is slower than that at larger L (measured train_s / FLOP estimate of the quick
# preset's baseline cells, 8 seeds: 1.22 at L = 10, 1.55 at L = 20, 1.5 at L = 30; L = 40
# extrapolated), and a cell costs more than its training: compilation, evaluation of raw and
# EMA weights of every seed (26 C(L, 2) queries per direction, generation over L positions:
# ~ L^3) and checkpoints, 13 s, 113 s and 343 s at L = 10, 20, 30 for 2 models x 8 seeds there
# (cell wall 186 s, 563 s, 1009 s; this estimate: 186 s, 554 s, 1019 s).
CPU_TRAIN_SLOWDOWN = {10: 1.22, 20: 1.55, 30: 1.5, 40: 1.6}


def cell_seconds(cfg: C.RunConfig) -> dict[str, float]:
    """Estimated seconds of one cell: {'cpu': its wall time on the 2-core CPU, 'gpu': its
    training on one H200}."""
    gf = step_gflop(cfg) / len(cfg.models) * sum(model_steps(cfg, m.name) for m in cfg.models)
    slow = CPU_TRAIN_SLOWDOWN.get(cfg.L, 1.2 + 0.5 * min(1.0, max(0, cfg.L - 10) / 30))
    model_seeds = len(cfg.models) * len(cfg.seeds)
    rest = 6.5 * model_seeds / 8 * (cfg.L / 10) ** 3  # s; ~13 s at L = 10 for 2 x 8
    return {"cpu": gf / THROUGHPUT_GFLOP_S["cpu"] * slow + rest,
            "gpu": gf / THROUGHPUT_GFLOP_S["gpu"]}


def describe(grid_cells, out: Path) -> str:
    """The dry-run listing: one line per cell with its state and a wall-time estimate on the
    development CPU (`cell_seconds`) and the training time on one GPU."""
    lines, left = [], {"cpu": 0.0, "gpu": 0.0}
    for v, L, cfg in grid_cells:
        d = cell_dir(out, v, L)
        sec = cell_seconds(cfg)
        state = cell_state(cfg, d)
        for k in left:
            left[k] += 0.0 if state == "finished" else sec[k]
        lines.append(f"{v:<12} L={L:<3} models={','.join(m.name for m in cfg.models):<10} "
                     f"seeds={len(cfg.seeds)} steps="
                     f"{','.join(dict.fromkeys(str(model_steps(cfg, m.name)) for m in cfg.models))} "
                     f"~{sec['cpu'] / 60:.0f} min CPU, "
                     f"~{sec['gpu'] / 60:.1f} min GPU  {state}  {d}")
    lines.append(f"{len(grid_cells)} cells; left: about {left['cpu'] / 60:.0f} min on the "
                 f"2-core CPU, {left['gpu'] / 60:.1f} min of training on one H200")
    return "\n".join(lines)


def run_grid(grid_cells, out: Path, *, progress: bool = True, log=print) -> list[Path]:
    """Train and evaluate every unfinished cell (after `check_cells`); returns the cells' run
    directories."""
    from toy_jax.rundir import run_experiment

    check_cells(grid_cells, out)
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


def write_verdict(every, out: Path, path: Path, command: str) -> dict:
    """The verdict record of every finished cell of `every` ((variant, L, cfg)), written to
    `path` (compact JSON, atomically)."""
    from toy_jax import verdict as V  # lazy: verdict loads numpy

    rec = V.digest([(v, cell_dir(out, v, L)) for v, L, c in every
                    if is_finished(c, cell_dir(out, v, L))], command)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_text(path, json.dumps(rec, separators=(",", ":")) + "\n")
    return rec


def study(grid_name, preset: str, out: Path, *, Ls=None, n_seeds=None, variants=None,
          verdict: Path | None = None, dry_run: bool = False, progress: bool = True,
          command: str = "", log=print, registry: dict | None = None,
          overrides=None) -> dict | None:
    """Run a grid (a name in `GRIDS`, or a `Grid` of ad-hoc variants in `registry`), or list
    it with `dry_run`, and write its verdict record to `verdict` (default OUT/verdict.json).
    Returns the record (None on a dry run)."""
    from toy_jax import verdict as V

    if isinstance(grid_name, Grid):
        grid = grid_name
    elif grid_name in GRIDS:
        grid = GRIDS[grid_name]
    else:
        raise ValueError(f"unknown grid {grid_name!r}; known: {sorted(GRIDS)}")
    kw = dict(registry=registry, overrides=overrides)
    grid_cells = cells(grid, preset, Ls, n_seeds, variants, **kw)
    for v in left_out(grid_cells, variants or grid.variants):
        log(f"{v}: left out, the baseline under preset {preset} (`same_as_baseline`)")
    if dry_run:
        log(describe(grid_cells, out))
        return None
    run_grid(grid_cells, out, progress=progress, log=log)
    # the verdict covers every finished cell of the grid, at its L and at those asked for
    every = cells(grid, preset, sorted(set(grid.Ls) | set(Ls or ())), n_seeds, **kw)
    path = Path(verdict) if verdict else Path(out) / "verdict.json"
    rec = write_verdict(every, out, path, command)
    if rec["cells"]:
        log(f"figure: {V.plot(rec, path.with_suffix('.png'))}")
    if V.forward_check(rec):
        log(V.forward_check(rec))
    log(f"verdict: {path}")
    return rec
