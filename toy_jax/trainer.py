"""Training of the toy MDM / ARM: one jitted program per chunk of steps, vmapped over seeds.

A chunk of K steps is a `lax.scan` of the full step (batch sampling from the forward
placements, masking, forward, backward, AdamW update, EMA); at the end of each chunk the
tracking probe (`tracking.track`) runs inside the same program on the raw and EMA weights. The
host sees metrics once per chunk. Every leaf of `TrainState` has a leading seed axis and the
chunk is `jax.vmap`ped over it, so all seeds train in one compiled program (sharded over the
seed axis when several devices are present and divide the number of seeds).

Overhead around the steps: the next chunk is dispatched before the host fetches the previous
chunk's metrics (so writing metrics and the progress bar overlap the computation); the probe
runs once on the raw and EMA weights stacked (one traced copy of the probe to compile); JAX's
persistent compilation cache (`enable_compile_cache`) lets a rerun skip compilation.

Randomness: seed s gives PRNGKey(s); its fold_in 0 initialises the parameters (the same for
the MDM and the ARM of one seed), fold_in 1 drives training, and step n uses
fold_in(train_key, n), so a resumed run reproduces an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from plumbing import io
from toy_jax import data, tracking
from toy_jax.configs import ModelConfig, RunConfig, TrainConfig
from toy_jax.losses import loss_for
from toy_jax.model import apply, graphdef_for, init_params, merge


class TrainState(NamedTuple):
    params: dict
    ema: dict
    opt_state: Any
    step: jax.Array  # int32, number of updates done
    key: jax.Array  # uint32 (2,), the training key of the seed


def lr_schedule(tcfg: TrainConfig):
    """lr * min(1, (n + 1) / warmup) at update n = 0, 1, ...: linear warm-up, then constant."""
    warm = max(1, tcfg.warmup_steps)
    return lambda n: tcfg.lr * jnp.minimum(1.0, (n + 1.0) / warm)


def make_optimizer(tcfg: TrainConfig) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW with the warm-up schedule (Table 8)."""
    return optax.chain(
        optax.clip_by_global_norm(tcfg.grad_clip),
        optax.adamw(lr_schedule(tcfg), b1=tcfg.adam_b1, b2=tcfg.adam_b2, eps=tcfg.adam_eps,
                    weight_decay=tcfg.weight_decay))


def ema_decay(n, max_decay: float):
    """RADD's EMA warm-up: the decay at update n = 1, 2, ... is min(max_decay, (1+n)/(10+n))."""
    return jnp.minimum(max_decay, (1.0 + n) / (10.0 + n))


def init_state(mcfg: ModelConfig, tcfg: TrainConfig, seed) -> TrainState:
    """State of one seed (vmappable over an int array of seeds)."""
    base = jax.random.PRNGKey(seed)
    params = init_params(mcfg, jax.random.fold_in(base, 0))
    return TrainState(params=params, ema=jax.tree.map(jnp.copy, params),
                      opt_state=make_optimizer(tcfg).init(params),
                      step=jnp.zeros((), jnp.int32), key=jax.random.fold_in(base, 1))


def init_states(mcfg: ModelConfig, tcfg: TrainConfig, seeds) -> TrainState:
    """States of all seeds, stacked on a leading axis."""
    return jax.jit(jax.vmap(lambda s: init_state(mcfg, tcfg, s)))(jnp.asarray(seeds, jnp.int32))


def make_step(graphdef, mcfg: ModelConfig, tcfg: TrainConfig, L: int):
    """One training step of one seed: state -> (state, (loss, grad_norm))."""
    tx = make_optimizer(tcfg)
    objective = loss_for(tcfg.objective, tcfg.loss)
    train_Px3 = jnp.asarray(data.forward_placements(L))

    def step(state: TrainState, _=None):
        k_batch, k_loss, k_drop = jax.random.split(jax.random.fold_in(state.key, state.step), 3)
        idx = jax.random.randint(k_batch, (tcfg.batch_size,), 0, train_Px3.shape[0])
        x_BxL = data.make_sequences(train_Px3[idx], L)

        def loss_fn(params):
            logits_fn = lambda x: apply(graphdef, params, x, dropout_key=k_drop)
            return objective(logits_fn, k_loss, x_BxL, tcfg.t_eps, tcfg.t_sampler)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        n = state.step + 1
        d = ema_decay(n.astype(jnp.float32), tcfg.ema_decay)
        ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.ema, params)
        return TrainState(params, ema, opt_state, n, state.key), (loss, optax.global_norm(grads))

    return step


@functools.lru_cache(maxsize=32)
def make_chunk(graphdef, mcfg: ModelConfig, tcfg: TrainConfig, L: int, n_steps: int,
               track: bool):
    """Jitted, seed-vmapped program: n_steps scanned steps, then (optionally) the probe.
    Cached, so repeated runs of one config reuse the compiled program."""
    step = make_step(graphdef, mcfg, tcfg, L)
    sched = lr_schedule(tcfg)
    probe = tracking.make_probe(L, tcfg.objective) if track else None

    def chunk(state: TrainState):
        state, (losses, gnorms) = jax.lax.scan(step, state, None, length=n_steps)
        m = {"loss": losses.mean(), "loss_last": losses[-1], "grad_norm": gnorms.mean(),
             "lr": sched(state.step - 1.0)}
        if probe is not None:  # raw and EMA weights in one vmapped probe
            both = jax.tree.map(lambda a, b: jnp.stack([a, b]), state.params, state.ema)
            tr = jax.vmap(lambda p: tracking.track(merge(graphdef, p), probe))(both)
            m.update({k: v[0] for k, v in tr.items()})
            m.update({f"ema_{k}": v[1] for k, v in tr.items()})
        return state, m

    return jax.jit(jax.vmap(chunk), donate_argnums=0)


CACHE_ENV = "REVERSAL_MDM_JAX_CACHE"


def enable_compile_cache() -> str | None:
    """Turn on JAX's persistent compilation cache; returns its directory (None when off).

    The directory is $REVERSAL_MDM_JAX_CACHE, else a `jax_compilation_cache_dir` already set
    (e.g. by JAX_COMPILATION_CACHE_DIR), else ~/.cache/reversal_mdm/jax (under
    $XDG_CACHE_HOME when set). REVERSAL_MDM_JAX_CACHE=0 (or off) disables it. Programs that
    compile in over 0.5 s are stored, so rerunning a command (a resumed run, another seed
    set of the same shapes, the tests) skips their compilation.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in ("0", "off", "false", "no"):
        return None
    if not env and jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(env).expanduser() if env else base / "reversal_mdm" / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # no writable cache: compile every time
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return str(path)


def shard_seeds(state: TrainState) -> TrainState:
    """Spread the seed axis over the devices when there are several and they divide it."""
    n_dev = jax.device_count()
    n_seeds = int(state.step.shape[0])
    if n_dev == 1 or n_seeds % n_dev:
        return state
    # Auto axes: the vmapped step's gathers have no explicit out_sharding (with Explicit
    # axes, make_mesh's default, they fail to trace)
    mesh = jax.make_mesh((n_dev,), ("seed",), axis_types=(jax.sharding.AxisType.Auto,))
    sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))
    return jax.device_put(state, sh)


def seed_slice(tree, i: int):
    """The i-th seed of a seed-stacked pytree."""
    return jax.tree.map(lambda a: a[i], tree)


@dataclass
class TrainedModel:
    """Result of `train_model`: seed-stacked raw and EMA parameters and timings."""

    name: str
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    seeds: tuple
    graphdef: Any
    params: dict
    ema: dict
    timing: dict = field(default_factory=dict)

    def seed_params(self, seed: int, ema: bool = False) -> dict:
        return seed_slice(self.ema if ema else self.params, self.seeds.index(seed))


def _metric_lines(name, seeds, step, m, wall_s):
    """One JSON-able dict per seed; per-head arrays become lists, with the head mean beside."""
    lines = []
    for i, s in enumerate(seeds):
        row = {"model": name, "seed": int(s), "step": int(step), "time_s": round(wall_s, 3)}
        for k, v in m.items():
            v = np.asarray(v[i])
            if v.ndim == 0:
                row[k] = float(v)
            else:
                row[k] = float(v.mean())
                if v.size > 1:
                    row[f"{k}_heads"] = [float(a) for a in v]
        lines.append(row)
    return lines


def train_model(cfg: RunConfig, name: str, *, ckpt=None, metrics_path: Path | None = None,
                progress: bool = True, stop_at: int | None = None,
                announce: bool = True) -> TrainedModel:
    """Train every seed of variant `name` of `cfg` in one vmapped program.

    `ckpt` (a `checkpoint.Checkpointer`) enables resume and periodic saves; `metrics_path`
    receives one JSON line per (chunk, seed); `stop_at` stops early (as an interruption would,
    after a checkpoint), e.g. to test resuming. With `announce`, one line after the first two
    chunks gives the measured time per step and an estimate of the total (the first chunk
    includes compilation, so neither the estimate nor the progress bar counts it).
    """
    from tqdm.auto import tqdm  # lazy: only training needs tqdm

    enable_compile_cache()
    mcfg, tcfg = cfg.configs_for(name)
    graphdef = graphdef_for(mcfg)
    seeds = tuple(cfg.seeds)
    state = init_states(mcfg, tcfg, seeds)
    if ckpt is not None:
        state = ckpt.restore_latest(state)
    state = shard_seeds(state)
    start = int(np.asarray(state.step)[0])
    if metrics_path is not None:
        _truncate_metrics(metrics_path, name, start)
    chunks: dict[int, Any] = {}
    end = tcfg.steps if stop_at is None else min(tcfg.steps, stop_at)
    split = {"first_chunk_s": None, "host_s": 0.0, "ckpt_s": 0.0}
    t0 = time.perf_counter()
    t_first_done, n_first, bar, pending = None, 0, None, None

    def flush():
        """Fetch the metrics of the chunk in `pending`, check and write them."""
        nonlocal pending
        if pending is None:
            return
        prev, stp, m = pending
        pending = None
        m = jax.device_get(m)
        th = time.perf_counter()
        if not np.all(np.isfinite(m["loss"])):
            raise FloatingPointError(f"{name}: non-finite loss at step {stp}")
        if metrics_path is not None:
            with open(metrics_path, "a") as f:
                for row in _metric_lines(name, seeds, stp, m, time.perf_counter() - t0):
                    f.write(json.dumps(row) + "\n")
        if bar is not None:
            if stp > bar.n:
                bar.update(stp - bar.n)
            bar.set_postfix(loss=f"{float(np.mean(m['loss'])):.4f}")
        split["host_s"] += time.perf_counter() - th

    step = start
    if progress and step < end:
        print(f"{name}: compiling the training program ({len(seeds)} seed(s) in one program)",
              flush=True)
    while step < end:
        n = min(tcfg.chunk, end - step)
        if n not in chunks:
            chunks[n] = make_chunk(graphdef, mcfg, tcfg, cfg.L, n, tcfg.track_every > 0)
        tc = time.perf_counter()
        state, m = chunks[n](state)  # dispatched asynchronously ...
        flush()  # ... so the previous chunk's metrics are written while this one runs
        prev, step = step, step + n
        pending = (prev, step, m)
        if prev == start:  # compilation + the first chunk
            jax.block_until_ready(m)
            t_first_done, n_first = time.perf_counter(), n
            split["first_chunk_s"] = round(t_first_done - tc, 3)
        elif bar is None and step < end:  # the second chunk: the steady time per step
            jax.block_until_ready(m)
            s_per_step = (time.perf_counter() - tc) / n
            if announce:
                print(_estimate_line(cfg, name, s_per_step, end - start,
                                     split["first_chunk_s"] - s_per_step * n_first), flush=True)
            bar = tqdm(total=tcfg.steps, initial=step, desc=name, disable=not progress,
                       dynamic_ncols=True)
        if ckpt is not None and (step // tcfg.ckpt_every > prev // tcfg.ckpt_every
                                 or step == end):
            flush()
            tk = time.perf_counter()
            ckpt.save(step, state)
            split["ckpt_s"] += time.perf_counter() - tk
    flush()
    if bar is not None:
        bar.close()
    if ckpt is not None:
        tk = time.perf_counter()
        ckpt.wait()
        split["ckpt_s"] += time.perf_counter() - tk
    t_end = time.perf_counter()
    n_steady = step - start - n_first
    timing = {"steps_run": step - start, "train_s": round(t_end - t0, 3),
              "ms_per_step": round(1e3 * (t_end - t_first_done) / n_steady, 3)
              if n_steady > 0 else None,
              **{k: (round(v, 3) if v is not None else None) for k, v in split.items()}}
    return TrainedModel(name, mcfg, tcfg, seeds, graphdef, state.params, state.ema, timing)


def _estimate_line(cfg: RunConfig, name: str, s_per_step: float, n_steps: int,
                   compile_s: float) -> str:
    """'mdm: ~ X s/step ..., about Y min for N steps x M models' (this and the later models)."""
    names = [m.name for m in cfg.models]
    n_models = len(names) - names.index(name)
    total = s_per_step * n_steps * n_models + max(compile_s, 0.0) * (n_models - 1)
    when = f"{total / 60:.0f} min" if total >= 120 else f"{max(total, 1.0):.0f} s"
    models = f" x {n_models} models" if n_models > 1 else ""
    per = f"{s_per_step:.3g} s" if s_per_step >= 1.0 else f"{1e3 * s_per_step:.3g} ms"
    line = (f"{name}: \u2248 {per}/step after compilation ({len(cfg.seeds)} "
            f"seed(s) in one program); about {when} for {n_steps} steps{models}")
    if cfg.preset == "paper" and jax.default_backend() == "cpu" and total > 600:
        line += " (--preset quick shows the effect in minutes on a CPU)"
    return line


def train(cfg: RunConfig, seeds=None, *, progress: bool = False) -> dict[str, TrainedModel]:
    """Train every model of `cfg` (all `seeds`, default cfg.seeds, in one program each), no I/O."""
    if seeds is not None:
        cfg = dataclasses.replace(cfg, seeds=tuple(int(s) for s in seeds))
    return {m.name: train_model(cfg, m.name, progress=progress, announce=progress)
            for m in cfg.models}


def _truncate_metrics(path: Path, name: str, step: int) -> None:
    """Drop lines of `name` past `step` (left by an interrupted run that resumes at `step`)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("model") != name or row.get("step", 0) <= step:
            keep.append(line)
    io.write_text(path, "".join(l + "\n" for l in keep))
