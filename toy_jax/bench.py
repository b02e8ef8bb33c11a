"""Benchmark of one training step of the toy MDM: JAX against the same step in PyTorch.

`scripts/bench_toy.py` is the command; everything it does lives here. Three runners, timed in
interleaved chunks after their warm-up (compilation) so that load from other processes hits
them alike:

* `jax_train` (and `jax_tracking`, with the in-loop probe): `trainer.make_chunk`, the program
  training uses;
* `torch`: `TorchStep(compile=True)`, the same step under torch.compile;
* `torch_eager`: `TorchStep(compile=False)`, the same step as a plain eager PyTorch loop.

Identical work, aspect by aspect (what `trainer.make_step` does, and how `TorchStep` matches it):

* batch: B indices drawn uniformly from the forward placements, sequences built from them by
  `make_sequences` inside the step (`torch_make_sequences`, torch.randint);
* model: `toy_jax.model` written out in torch on the same parameter layout (`x @ W`, W of shape
  (in, out)), float32, initialised with the JAX initial parameters of seed 0 (the same values,
  so the same init family); dropout (same rate) at the same two places, after W_o and after
  the MLP;
* loss: L_MDM with t = t_eps + (1 - t_eps) u (`t_sampler` iid or stratified), masks u < t,
  per-sequence masked NLL sum / t, mean over the batch (`torch_mdm_loss_from_masks`);
* update: global-norm clipping, AdamW (same betas, eps, weight decay) with the linear warm-up
  lr(n) = lr * min(1, (n + 1) / warmup), then the EMA with RADD's decay warm-up
  min(ema_decay, (1 + n) / (10 + n)), all from a step counter held as a tensor;
* threads: torch gets as many as XLA's CPU client uses (the usable cores);
* warm-up: JAX's first call compiles; torch runs `warmup` steps first (compilation and
  recompilation); neither is timed.

What cannot be identical: the random streams (JAX's Threefry-2x32 and `model.keep_mask`
against torch's generator; the same distributions, other draws), torch's clipping factor
max / (norm + 1e-6) against optax's max / norm, and the loop itself: JAX scans `steps` steps in
one compiled program, torch runs a Python loop of steps, each launching its own kernels. Under
torch.compile the loss (sampling and forward; AOTAutograd compiles its backward) and the update
are compiled; the optimizer's own graph breaks (`torch.optim.optimizer._use_grad`) split the
update into three graphs, and the backward runs through the autograd engine.

Timings need a quiet machine: with other processes on the cores, torch's OpenMP threads wait at
every op's barrier for a descheduled thread and lose far more than XLA's pool (`BUSY_LOAD`).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from plumbing import io
from plumbing.cli import OneLineParser, UsageError, run_main
from toy_jax import configs, data, vocab
from plumbing.provenance import cpu_model as _cpu_name
from plumbing.provenance import usable_cores

PROG = "bench_toy.py"
# 1-min load average from which the machine counts as busy: with other processes on the cores,
# every OpenMP barrier of a torch op waits for a descheduled thread (measured on a 2-core
# runner at load 3: an eager step at 2 threads 25x slower than at 1), XLA's pool much less so
BUSY_LOAD = 0.5
DESCRIPTION = """\
Benchmark one training step of the toy MDM (default: paper config, L = 20) in JAX and in PyTorch.

Reports ms per step after compilation, the achieved GFLOP/s (FLOPs counted by XLA's cost
analysis of the compiled step), the in-loop tracking overhead, and the same step in PyTorch
under torch.compile and as a plain eager loop: the same shapes, float32, initial parameters,
batch sampling, L_MDM loss, dropout, clipping, AdamW with the warm-up schedule and EMA, on as
many threads as XLA uses, warm-up excluded on every side. The timed chunks alternate (JAX, JAX
with tracking, torch.compile, eager, JAX, ...) and each figure is the median over its chunks,
so that load from other processes hits every side alike. Prints JAX / torch.compile,
JAX / eager and torch.compile / eager; writes the numbers, the CPU model, the threads and the
load average to --out as JSON.

Exit codes: 0 done, 1 failure, 2 bad arguments, 130 interrupted."""


# --------------------------------------------------------------------------- timing helpers

def cpu_model() -> str:
    """The CPU's model name and core count."""
    return f"{_cpu_name()}, {os.cpu_count()} logical cores"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 min load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def threads() -> int:
    """Threads XLA's CPU client runs on: every usable core (= os.cpu_count() without taskset)."""
    return usable_cores()


def timed(fn, steps: int) -> float:
    """Time one chunk of `steps` steps: returns ms per step."""
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0) / steps


def interleaved(runners: dict, steps: int, repeats: int) -> dict:
    """Alternate one timed chunk of each runner, `repeats` rounds: name -> ms per step list."""
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(timed(run, steps))
    return times


def summarize(times: list[float]) -> dict:
    """Median ms per step and every chunk's value."""
    return {"ms_per_step": statistics.median(times), "ms_all": [round(t, 2) for t in times]}


def bench_configs(L: int, preset: str, steps: int):
    """(ModelConfig, TrainConfig) of the benchmarked MDM: the preset, tracking every `steps`."""
    cfg = configs.make_config(L=L, preset=preset, model="mdm",
                              train_overrides=dict(track_every=steps))
    return cfg.configs_for("mdm")


# --------------------------------------------------------------------------- JAX side

def setup_jax(L: int, steps: int, preset: str, tracking: bool = True) -> dict:
    """Compiled JAX chunks (train, and train + tracking probe) of `steps` steps: name -> runner."""
    from toy_jax import trainer  # lazy (with toy_jax.model): flax and optax, not needed for --help
    from toy_jax.model import graphdef_for

    mcfg, tcfg = bench_configs(L, preset, steps)
    g = graphdef_for(mcfg)
    runners, info = {}, {}
    for track in (False, True) if tracking else (False,):
        fn = trainer.make_chunk(g, mcfg, tcfg, L, steps, track)
        box = [trainer.init_states(mcfg, tcfg, (0,))]

        def run(fn=fn, box=box):
            box[0], m = fn(box[0])
            jax.block_until_ready(m)

        name = "tracking" if track else "train"
        t0 = time.perf_counter()
        run()
        info[name] = {"first_call_s": round(time.perf_counter() - t0, 2)}
        runners[name] = run
    # FLOPs of one step, from XLA's cost analysis of a 1-step program
    fn1 = trainer.make_chunk(g, mcfg, tcfg, L, 1, False)
    ca = fn1.lower(trainer.init_states(mcfg, tcfg, (0,))).compile().cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    info["gflop_per_step"] = float(ca.get("flops", float("nan"))) / 1e9
    info["tracking_every"] = steps
    info["config"] = {"L": L, "d_model": mcfg.d_model, "batch_size": tcfg.batch_size,
                      "n_heads": mcfg.n_heads, "dropout": mcfg.dropout,
                      "precision": mcfg.precision}
    info["threads"] = threads()
    info["prng"] = "threefry2x32 (jax_threefry_partitionable=%s); dropout masks: " \
        "toy_jax.model.keep_mask" % jax.config.jax_threefry_partitionable
    info["jax_version"] = jax.__version__
    return {"runners": runners, "info": info}


def jax_initial_params(mcfg, tcfg, seed: int = 0) -> dict:
    """The JAX initial parameters of `seed` (what `trainer.init_states` starts from), as numpy."""
    from toy_jax import trainer

    return {k: np.asarray(v) for k, v in trainer.init_state(mcfg, tcfg, seed).params.items()}


# --------------------------------------------------------------------------- torch side

def torch_make_sequences(placements_Nx3, L: int):
    """`data.make_sequences` in torch: token ids (N, L) of placements (letter, lower, upper)."""
    import torch

    letter = placements_Nx3[:, data.LETTER]
    pos = torch.arange(L, device=placements_Nx3.device)[None, :]
    lo = placements_Nx3[:, data.LOWER_POS][:, None]
    up = placements_Nx3[:, data.UPPER_POS][:, None]
    x = torch.where(pos == lo, (vocab.LOWER0 + letter)[:, None], vocab.PAD)
    return torch.where(pos == up, (vocab.UPPER0 + letter)[:, None], x)


def torch_sample_t(batch: int, t_eps: float, t_sampler: str = "iid"):
    """`losses.T_SAMPLERS` in torch: t in [t_eps, 1), i.i.d. or stratified over the batch."""
    import torch

    if t_sampler == "iid":
        u = torch.rand(batch)
    elif t_sampler == "stratified":
        u = torch.remainder(torch.rand(()) + torch.arange(batch, dtype=torch.float32) / batch,
                            1.0)
    else:
        raise ValueError(f"t_sampler must be iid or stratified, got {t_sampler!r}")
    return t_eps + (1.0 - t_eps) * u


def torch_mdm_loss_from_masks(logits_BxLxT, x_BxL, masked_BxL, t_B):
    """`losses.mdm_loss_from_masks` in torch: mean_b (1/t_b) sum_i [masked] -log p(x_bi)."""
    import torch

    nll = -torch.log_softmax(logits_BxLxT, -1).gather(-1, x_BxL[..., None])[..., 0]
    return (torch.where(masked_BxL, nll, 0.0).sum(-1) / t_B).mean()


def torch_logits(p: dict, x_BxL, mcfg, rope=None, train: bool = False):
    """`toy_jax.model.ToyTransformer.__call__` in torch on the JAX parameter dict `p`
    (weights (in, out), used as x @ W); dropout (rate mcfg.dropout) only when `train`."""
    import torch
    import torch.nn.functional as F

    if mcfg.precision != "fp32":
        raise ValueError("the torch comparator runs float32 only (precision='fp32')")
    B, L = x_BxL.shape
    d, H = mcfg.d_model, mcfg.n_heads
    dh, rate = d // H, mcfg.dropout if train else 0.0
    h0 = F.embedding(x_BxL, p["embed"])
    if "pos_embed" in p:
        h0 = h0 + p["pos_embed"][:L]
    a = F.layer_norm(h0, (d,), p["ln1_scale"], p["ln1_bias"], 1e-5)
    q, k, v = (a @ p["w_qkv"]).view(B, L, 3, H, dh).unbind(2)
    if rope is not None:  # rotate-half RoPE, as model.apply_rope
        c, s = rope[0][:L, None, :], rope[1][:L, None, :]
        q, k = [torch.cat([z[..., : dh // 2] * c - z[..., dh // 2:] * s,
                           z[..., dh // 2:] * c + z[..., : dh // 2] * s], -1) for z in (q, k)]
    att = torch.einsum("bihd,bjhd->bhij", q, k) * (1.0 / math.sqrt(dh))
    if mcfg.attention == "causal":
        att = att.masked_fill(~torch.ones(L, L, dtype=torch.bool).tril(), float("-inf"))
    o = torch.einsum("bhij,bjhd->bihd", att.softmax(-1), v).reshape(B, L, d)
    h1 = h0 + F.dropout(o @ p["w_out"], rate, rate > 0)
    m = F.layer_norm(h1, (d,), p["ln2_scale"], p["ln2_bias"], 1e-5)
    m = F.gelu(m @ p["w_mlp1"] + p["b_mlp1"], approximate="tanh") @ p["w_mlp2"] + p["b_mlp2"]
    h2 = h1 + F.dropout(m, rate, rate > 0)
    return F.layer_norm(h2, (d,), p["lnf_scale"], p["lnf_bias"], 1e-5) @ p["w_head"] + p["b_head"]


class TorchStep:
    """One JAX training step (`trainer.make_step`, MDM objective) in PyTorch; `step()` runs it.

    Parameters start from `params0` (numpy, e.g. `jax_initial_params`); `ema` follows them as
    in the trainer; `n` counts updates (a float tensor, so schedules do not recompile). With
    `compile`, the loss (sampling, forward; AOTAutograd compiles its backward) and the update
    (clipping, AdamW, EMA) are torch.compile'd; otherwise everything runs eagerly.
    """

    def __init__(self, mcfg, tcfg, L: int, params0: dict, compile: bool = False):
        import torch

        from toy_jax.model import rope_tables

        if tcfg.objective != "mdm":
            raise ValueError("the torch comparator implements the MDM objective only")
        self.mcfg, self.tcfg, self.L = mcfg, tcfg, L
        self.params = {k: torch.tensor(np.array(v), requires_grad=True)
                       for k, v in params0.items()}
        self.plist = list(self.params.values())
        self.ema = [p.detach().clone() for p in self.plist]
        self.rope = None
        if mcfg.pos == "rope":
            self.rope = tuple(torch.from_numpy(np.array(a))
                              for a in rope_tables(L, mcfg.d_head, mcfg.rope_base))
        self.placements = torch.from_numpy(data.forward_placements(L)).long()
        self.n = torch.zeros((), dtype=torch.float32)
        self.lr = torch.tensor(tcfg.lr, dtype=torch.float32)  # a tensor: no recompiles
        self.opt = torch.optim.AdamW(self.plist, lr=self.lr, betas=(tcfg.adam_b1, tcfg.adam_b2),
                                     eps=tcfg.adam_eps, weight_decay=tcfg.weight_decay)
        self.compiled = compile
        self._loss = torch.compile(self.loss) if compile else self.loss
        self._update = torch.compile(self.update) if compile else self.update

    def sample_batch(self):
        """B training sequences, placements drawn uniformly (as `trainer.make_step`)."""
        import torch

        idx = torch.randint(0, self.placements.shape[0], (self.tcfg.batch_size,))
        return torch_make_sequences(self.placements[idx], self.L)

    def loss(self, train: bool = True):
        """L_MDM of a fresh batch: sample t and masks, forward x_t with dropout."""
        import torch

        x = self.sample_batch()
        t = torch_sample_t(x.shape[0], self.tcfg.t_eps, self.tcfg.t_sampler)
        masked = torch.rand(x.shape) < t[:, None]
        logits = torch_logits(self.params, torch.where(masked, vocab.MASK, x), self.mcfg,
                              self.rope, train)
        return torch_mdm_loss_from_masks(logits, x, masked, t)

    def update(self):
        """Clip the gradients, AdamW with the warm-up lr, then the EMA: returns the grad norm."""
        import torch

        tc, n = self.tcfg, self.n
        self.lr.copy_(tc.lr * torch.clamp((n + 1.0) / max(1, tc.warmup_steps), max=1.0))
        gnorm = torch.nn.utils.clip_grad_norm_(self.plist, tc.grad_clip)
        self.opt.step()
        n.add_(1.0)
        decay = torch.clamp((1.0 + n) / (10.0 + n), max=tc.ema_decay)
        with torch.no_grad():
            for e, p in zip(self.ema, self.plist):
                e.lerp_(p, 1.0 - decay)
        return gnorm

    def step(self):
        """One training step: (loss, grad norm), both tensors (no host sync)."""
        loss = self._loss()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        return loss.detach(), self._update()


def _graph_count() -> int:
    """Graphs torch.compile has compiled so far in this process."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def setup_torch(L: int, preset: str, steps: int, compile: bool = True, warmup: int = 8) -> dict:
    """A `TorchStep` of the benchmarked config on `threads()` threads, warmed up: {"run": a
    chunk of `steps` steps, "info": JSON-able facts, "step": the TorchStep,
    "graphs_before_timing": graphs compiled so far in the process}."""
    import torch

    torch.set_num_threads(threads())
    mcfg, tcfg = bench_configs(L, preset, steps)
    torch.manual_seed(0)
    ts = TorchStep(mcfg, tcfg, L, jax_initial_params(mcfg, tcfg), compile=compile)
    g0 = _graph_count()
    t0 = time.perf_counter()
    for _ in range(warmup):  # torch.compile compiles (and may recompile) in the first calls
        ts.step()
    warm_s = time.perf_counter() - t0
    info = {"mode": "torch.compile" if compile else "eager", "warmup_steps": warmup,
            "warmup_s": round(warm_s, 2), "threads": torch.get_num_threads(),
            "version": torch.__version__}
    if compile:
        info["graphs_compiled_in_warmup"] = _graph_count() - g0

    def run():
        for _ in range(steps):
            ts.step()

    return {"run": run, "info": info, "step": ts, "graphs_before_timing": _graph_count()}


# --------------------------------------------------------------------------- the command

def build_parser() -> argparse.ArgumentParser:
    """The flags of scripts/bench_toy.py."""
    ap = OneLineParser(prog=PROG, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, default=20)
    ap.add_argument("--preset", choices=("paper", "quick"), default="paper")
    ap.add_argument("--steps", type=int, default=10,
                    help="steps per timed chunk (= tracking N; default 10)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed chunks of each kind, interleaved (default 5)")
    ap.add_argument("--warmup", type=int, default=8,
                    help="untimed torch steps before timing (compilation; default 8)")
    ap.add_argument("--no-torch", action="store_true", help="skip both PyTorch comparators")
    ap.add_argument("--no-eager", action="store_true",
                    help="skip the eager PyTorch loop (keep torch.compile)")
    ap.add_argument("--no-tracking", action="store_true",
                    help="skip the JAX chunk with the tracking probe")
    ap.add_argument("--out", default="runs/bench_toy.json",
                    help="JSON file to write (default runs/bench_toy.json)")
    return ap


def _ratios(res: dict, times: dict, a: str, b: str, key: str) -> tuple[float, list[float]]:
    """Median ratio a / b into res[key] and its per-round values into res[key + '_per_round']."""
    per_round = [x / y for x, y in zip(times[a], times[b])]
    res[key] = statistics.median(times[a]) / statistics.median(times[b])
    res[f"{key}_per_round"] = [round(r, 3) for r in per_round]
    return res[key], per_round


def run(L: int = 20, preset: str = "paper", steps: int = 10, repeats: int = 5,
        warmup: int = 8, with_torch: bool = True, with_eager: bool = True,
        with_tracking: bool = True, out=None, echo=print) -> dict:
    """Set up, warm up and time every runner; print the summary; write the JSON to `out`."""
    if L < 2 or steps < 1 or repeats < 1 or warmup < 1:
        raise UsageError("need L >= 2, steps >= 1, repeats >= 1, warmup >= 1")
    res = {"cpu": cpu_model(), "load_average_start": load_average(), "threads": threads()}
    jx = setup_jax(L, steps, preset, tracking=with_tracking)
    runners = {f"jax_{k}": v for k, v in jx["runners"].items()}
    tc = {}
    if with_torch:
        tc["torch"] = setup_torch(L, preset, steps, compile=True, warmup=warmup)
        if with_eager:
            tc["torch_eager"] = setup_torch(L, preset, steps, compile=False, warmup=warmup)
    runners.update({k: v["run"] for k, v in tc.items()})
    times = interleaved(runners, steps, repeats)
    res["load_average_end"] = load_average()
    j = res["jax"] = dict(jx["info"])
    for k in jx["runners"]:
        j[k] = {**summarize(times[f"jax_{k}"]), **j.pop(k)}
    ms = j["train"]["ms_per_step"]
    j["gflop_per_s"] = j["gflop_per_step"] / (ms / 1e3)
    line = (f"JAX   : {ms:.1f} ms/step, {j['gflop_per_step']:.1f} GFLOP/step, "
            f"{j['gflop_per_s']:.1f} GFLOP/s, {j['threads']} threads")
    if "tracking" in j:
        j["tracking_overhead"] = j["tracking"]["ms_per_step"] / ms - 1.0
        line += (f"; with tracking every {steps}: {j['tracking']['ms_per_step']:.1f} "
                 f"ms/step ({100 * j['tracking_overhead']:+.1f}%)")
    echo(f"CPU   : {res['cpu']}; load average {res['load_average_start']} -> "
         f"{res['load_average_end']}")
    echo(line)
    of = f"(medians of {repeats} interleaved chunks of {steps} steps; per round"
    for name, head, label, key in (("torch", "torch", "torch.compile", "jax_over_torch"),
                                   ("torch_eager", "eager", "eager torch",
                                    "jax_over_torch_eager")):
        if name not in tc:
            continue
        t = res[name] = {**summarize(times[name]), **tc[name]["info"]}
        if name == "torch":  # a recompilation while timing would be timed: say so
            t["graphs_compiled_while_timing"] = _graph_count() - tc[name]["graphs_before_timing"]
        r, pr = _ratios(res, times, "jax_train", name, key)
        echo(f"{head:<6}: {t['ms_per_step']:.1f} ms/step ({label}, {t['threads']} threads); "
             f"JAX / {label} = {r:.2f} {of} {min(pr):.2f}-{max(pr):.2f})")
    if "torch_eager" in tc:
        r, pr = _ratios(res, times, "torch", "torch_eager", "torch_over_eager")
        echo(f"        torch.compile / eager torch = {r:.2f} (per round "
             f"{min(pr):.2f}-{max(pr):.2f})")
    warnings = res["warnings"] = []
    if res.get("torch", {}).get("graphs_compiled_while_timing"):
        warnings.append("torch.compile recompiled while timing; rerun with a larger --warmup")
    load = res["load_average_start"]
    if tc and load and load[0] >= BUSY_LOAD:
        warnings.append(f"load average {load[0]} before the run: other processes compete for "
                        "the cores, and torch's OpenMP threads lose far more to them than "
                        "XLA's; the ratios overstate JAX's lead, rerun on a quiet machine")
    for w in warnings:
        echo(f"warning: {w}")
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(out, json.dumps(res, indent=2) + "\n")
        echo(f"written: {out}")
    return res


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    run(L=args.L, preset=args.preset, steps=args.steps, repeats=args.repeats,
        warmup=args.warmup, with_torch=not args.no_torch, with_eager=not args.no_eager,
        with_tracking=not args.no_tracking, out=args.out)
    return 0


def main(argv=None) -> int:
    """scripts/bench_toy.py. Exit codes (`plumbing.cli`): 0 done, 1 failure, 2 bad arguments,
    130 interrupted."""
    return run_main(PROG, _main, argv)
