"""Self-describing run directories: train, evaluate, write results, and load them back.

    OUT/config.json          the RunConfig (a different config in an existing OUT is refused)
    OUT/metrics.jsonl        one line per (model, seed, chunk): loss, lr, grad norm, tracking
    OUT/checkpoints/<model>/ orbax checkpoints of the seed-stacked TrainState (resume)
    OUT/results.json         forward / reverse x infill / completion / infill_letter metrics, raw
                         and EMA weights (see `toy_jax.evaluate`), and the provenance of the
                         code and machine that wrote it (`plumbing.provenance.record`)

`load_run(OUT)` rebuilds every trained model from the directory alone.
"""
from __future__ import annotations

import dataclasses

import json
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from plumbing import io, provenance
from plumbing.stats import mean_sem
from toy_jax import records
from toy_jax.checkpoint import Checkpointer
from toy_jax.configs import RunConfig
from toy_jax.evaluate import evaluate_stacked
from toy_jax.model import graphdef_for, merge
from toy_jax.trainer import init_states, seed_slice, train_model

HEADLINE = {"mdm": "ema", "arm": "raw"}  # the paper's RADD used EMA weights, GPT-2 did not
PROTOCOL_NOTES = {
    "infill": "position given: target position set to [M], rest of the placement visible; "
              "MDM reads the [M], ARM predicts it from the prefix",
    "completion": "position free: prompt = placement through the cue; later positions generated "
                  "left to right (ARM next-token; MDM unmasks the left-most [M] per step); "
                  "success if the partner letter appears after the cue; p_target/rank "
                  "teacher-forced at the true position",
    "infill_letter": "letter-level: the infill queries and logits with the pad output 0 "
                     "excluded, i.e. which of the 52 letters goes at the [M]; rank among the "
                     "letters, p_target renormalised over them",
    "topk_success": "top-k sampling, k = eval.top_k, fixed eval.eval_seed",
}


class RunDirError(ValueError):
    """The run directory cannot be used with this config."""


def prepare_run_dir(cfg: RunConfig, out: Path) -> None:
    """Create OUT with config.json, or accept it if it holds exactly this config."""
    out = Path(out)
    cfg_path = out / "config.json"
    if cfg_path.exists():
        try:
            old = RunConfig.from_dict(json.loads(cfg_path.read_text()))
        except (ValueError, KeyError, TypeError) as e:
            raise RunDirError(f"{cfg_path} is not a valid run config ({e})") from e
        if old != cfg and _extends(old, cfg):
            # Only the step count grew: resume from the last checkpoint and train on. The LR is
            # constant after warm-up and step n's batch key depends on n alone, so this equals
            # a run started with the larger --steps.
            io.write_text(cfg_path, cfg.to_json() + "\n")
            return
        if old != cfg:
            diff = _diff(old.to_dict(), cfg.to_dict())
            raise RunDirError(f"{out} holds a run with a different config ({diff}); "
                              "use another --out")
        return
    if out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} exists, is not empty and has no config.json; use another --out")
    out.mkdir(parents=True, exist_ok=True)
    io.write_text(cfg_path, cfg.to_json() + "\n")


def _extends(old: RunConfig, new: RunConfig) -> bool:
    """True when `new` differs from `old` only by training steps, none fewer and some more
    (the run's `train.steps` or a model's own `ModelSpec.steps`)."""
    def strip(c: RunConfig) -> RunConfig:
        return dataclasses.replace(c, train=dataclasses.replace(c.train, steps=1),
                                   models=tuple(dataclasses.replace(m, steps=None)
                                                for m in c.models))

    if strip(old) != strip(new):
        return False
    grown = [(new.steps_of(m.name), old.steps_of(m.name)) for m in new.models]
    return all(n >= o for n, o in grown) and any(n > o for n, o in grown)


def _diff(a: dict, b: dict, prefix: str = "") -> str:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                return _diff(a[k], b[k], f"{prefix}{k}.")
            return f"{prefix}{k}: {a.get(k)!r} there vs {b.get(k)!r} now"
    return "?"


def evaluate_trained(cfg: RunConfig, name: str, graphdef, params_stack: dict,
                     ema_stack: dict) -> dict:
    """{seed: {'forward', 'reverse', 'ema': {'forward', 'reverse'}}} for one variant; the raw
    and EMA weights of every seed (stacked on a leading axis in `cfg.seeds` order) are
    evaluated in one vmapped program."""
    both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), params_stack, ema_stack)
    res = evaluate_stacked(graphdef, both, cfg.spec(name).objective, cfg.L, cfg.eval)
    n = len(cfg.seeds)
    return {s: {**res[i], "ema": res[n + i]} for i, s in enumerate(cfg.seeds)}


def _mean_sem(trees: list):
    """`plumbing.stats.mean_sem` (0 for one seed) leaf by leaf over identically shaped nested
    dicts: (tree of means, tree of s.e.m.s)."""
    if isinstance(trees[0], dict):
        pairs = {k: _mean_sem([t[k] for t in trees]) for k in trees[0]}
        return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}
    return mean_sem(trees)


def build_results(cfg: RunConfig, per_seed: dict, timing: dict) -> dict:
    """results.json: `models` holds the seed means (the values themselves for one seed)."""
    models, sems = {}, {}
    for name, by_seed in per_seed.items():
        models[name], sems[name] = _mean_sem([by_seed[s] for s in cfg.seeds])
    return {
        "config": cfg.to_dict(),
        "seeds": list(cfg.seeds),
        "headline": {m.name: HEADLINE[m.objective] for m in cfg.models},
        "models": models,
        "models_sem": sems,
        "per_seed": {str(s): {n: per_seed[n][s] for n in per_seed} for s in cfg.seeds},
        "protocols": PROTOCOL_NOTES,
        "timing": timing,
        "provenance": provenance.record(),  # the code and machine that wrote this file
    }


def run_experiment(cfg: RunConfig, out: Path | str, *, progress: bool = True) -> dict:
    """Train (or resume) every model of `cfg` in OUT, evaluate raw and EMA weights of every
    seed, and write results.json. Returns the results dict."""
    out = Path(out)
    prepare_run_dir(cfg, out)
    previous = _read_json(out / "results.json")
    per_seed, timing = {}, {}
    for spec in cfg.models:
        ckpt = Checkpointer(out / "checkpoints" / spec.name)
        try:
            tm = train_model(cfg, spec.name, ckpt=ckpt, metrics_path=out / "metrics.jsonl",
                             progress=progress)
        finally:
            ckpt.close()
        kept = _unchanged_results(previous, cfg, spec.name, tm.timing)
        if kept is not None:  # e.g. the ARM of a run whose MDM alone was extended
            timing[spec.name], per_seed[spec.name] = kept
            continue
        timing[spec.name] = tm.timing
        per_seed[spec.name] = evaluate_trained(cfg, spec.name, tm.graphdef, tm.params, tm.ema)
    results = build_results(cfg, per_seed, timing)
    io.write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _unchanged_results(previous: dict | None, cfg: RunConfig, name: str, timing: dict):
    """(timing, per-seed results) of `name` from the run's earlier results.json when this call
    trained it no further and its model, training and evaluation configs and seeds are those
    of the earlier run (the evaluation would repeat itself); else None."""
    if not previous or timing.get("steps_run", 1) != 0:
        return None
    try:
        old = RunConfig.from_dict(previous["config"])
        same = (old.configs_for(name) == cfg.configs_for(name) and old.eval == cfg.eval
                and old.seeds == cfg.seeds and old.L == cfg.L)
        if not same:
            return None
        return (previous["timing"][name],
                {s: previous["per_seed"][str(s)][name] for s in cfg.seeds})
    except (KeyError, ValueError, TypeError):
        return None


def reevaluate_run(out: Path | str) -> dict:
    """Evaluate the final checkpoints of a finished run again and rewrite its results.json
    (timing kept): adds readings introduced after the run was trained, without retraining."""
    out = Path(out)
    run = load_run(out)
    cfg = run.config
    missing = [s.name for s in cfg.models
               if s.name not in run.states or run.step(s.name) != cfg.steps_of(s.name)]
    if missing:
        raise RunDirError(f"{out}: no final checkpoint of {missing}; rerun training instead")
    per_seed = {s.name: evaluate_trained(cfg, s.name, run.graphdefs[s.name],
                                         run.params(s.name), run.params(s.name, ema=True))
                for s in cfg.models}
    results = build_results(cfg, per_seed, (run.results() or {}).get("timing", {}))
    io.write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results


@dataclass
class LoadedRun:
    """A run directory read back: config, seed-stacked parameters per model, metrics, results."""

    out: Path
    config: RunConfig
    states: dict  # model name -> TrainState (seed-stacked), latest checkpoint
    graphdefs: dict  # model name -> nnx GraphDef

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self.states)

    def params(self, name: str, seed: int | None = None, ema: bool = False) -> dict:
        """Parameters of `name` (dict of arrays): all seeds stacked, or one seed."""
        st = self.states[name]
        tree = st.ema if ema else st.params
        return tree if seed is None else seed_slice(tree, self.config.seeds.index(seed))

    def model(self, name: str, seed: int | None = None, ema: bool = False):
        """The `ToyTransformer` of one seed (default: the first), raw or EMA weights."""
        seed = self.config.seeds[0] if seed is None else seed
        return merge(self.graphdefs[name], self.params(name, seed, ema))

    def step(self, name: str) -> int:
        return int(np.asarray(self.states[name].step)[0])

    def metrics(self, name: str | None = None) -> list[dict]:
        return records.read_metrics(self.out, name)

    def results(self) -> dict | None:
        return records.read_results(self.out)


def load_run(out: Path | str) -> LoadedRun:
    """Rebuild every checkpointed model of a run directory from the directory alone."""
    out = Path(out)
    cfg_path = out / "config.json"
    if not cfg_path.exists():
        raise RunDirError(f"{out} is not a run directory (no config.json)")
    try:
        cfg = RunConfig.from_dict(json.loads(cfg_path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{cfg_path} is not a valid run config ({e})") from e
    states, graphdefs = {}, {}
    for spec in cfg.models:
        d = out / "checkpoints" / spec.name
        if not d.exists():
            continue
        mcfg, tcfg = cfg.configs_for(spec.name)
        ck = Checkpointer(d)
        try:
            if ck.latest_step() is None:
                continue
            # restore needs only shapes and dtypes: trace the initialiser, do not run it
            template = jax.eval_shape(lambda: init_states(mcfg, tcfg, cfg.seeds))
            states[spec.name] = ck.restore(template)
        finally:
            ck.close()
        graphdefs[spec.name] = graphdef_for(mcfg)
    if not states:
        raise RunDirError(f"{out} has no checkpoints")
    return LoadedRun(out, cfg, states, graphdefs)
