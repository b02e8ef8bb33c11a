"""Benchmark one training step of the toy MDM (paper config, L = 20) in JAX and in PyTorch.

    python scripts/bench_toy.py                 # JAX + torch.compile comparator
    python scripts/bench_toy.py --no-torch --steps 10

Reports ms per step after compilation, the achieved GFLOP/s (FLOPs counted by XLA's cost
analysis of the compiled step), the in-loop tracking overhead, and the same model and step in
PyTorch with torch.compile. After both are compiled, the timed chunks alternate (JAX, JAX with
tracking, torch, JAX, ...) and each figure is the median over its chunks, so that load from
other processes hits both sides alike and the ratio JAX / torch is fair on a shared machine.
Writes the numbers, the CPU model and the load average to --out as JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_model() -> str:
    """The CPU's model name and core count."""
    import os

    from toy_jax.provenance import cpu_model as name

    return f"{name()}, {os.cpu_count()} logical cores"


def load_average() -> list[float] | None:
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def timed(fn, steps: int):
    """Time one chunk of `steps` steps: returns ms per step."""
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0) / steps


def setup_jax(L: int, steps: int, preset: str, tracking: bool = True) -> dict:
    """Compiled JAX chunks (train, and train + tracking probe) of `steps` steps: name -> runner."""
    import jax

    from toy_jax import configs, trainer
    from toy_jax.model import graphdef_for

    cfg = configs.make_config(L=L, preset=preset, model="mdm",
                              train_overrides=dict(track_every=steps))
    mcfg, tcfg = cfg.configs_for("mdm")
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
    info["prng"] = "threefry2x32 (jax_threefry_partitionable=%s); dropout masks: " \
        "toy_jax.model.keep_mask" % jax.config.jax_threefry_partitionable
    info["jax_version"] = jax.__version__
    return {"runners": runners, "info": info}


def setup_torch(L: int, preset: str, warmup: int = 8) -> dict:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from toy_jax import configs, data, vocab

    cfg = configs.make_config(L=L, preset=preset, model="mdm")
    d, H, B, p = cfg.model.d_model, cfg.model.n_heads, cfg.train.batch_size, cfg.model.dropout
    dh = d // H
    theta = torch.tensor([cfg.model.rope_base ** (-2 * i / dh) for i in range(dh // 2)])
    ang = torch.arange(L)[:, None].float() * theta[None]
    cos, sin = ang.cos(), ang.sin()

    class Block(nn.Module):  # the same one-block pre-norm Transformer as toy_jax.model
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab.VOCAB_SIZE, d)
            self.ln1, self.ln2, self.lnf = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d, bias=False)
            self.out = nn.Linear(d, d, bias=False)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * d, d))
            self.head = nn.Linear(d, vocab.N_TARGETS)

        def rope(self, x):
            x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
            c, s = cos[:, None, :], sin[:, None, :]
            return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

        def forward(self, x):
            h = self.emb(x)
            q, k, v = self.qkv(self.ln1(h)).view(x.shape[0], L, 3, H, dh).unbind(2)
            q, k = self.rope(q), self.rope(k)
            s = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(dh)
            o = torch.einsum("bhij,bjhd->bihd", s.softmax(-1), v).reshape(h.shape)
            h = h + F.dropout(self.out(o), p, self.training)
            h = h + F.dropout(self.mlp(self.ln2(h)), p, self.training)
            return self.head(self.lnf(h))

    torch.manual_seed(0)
    model = Block()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.0)
    train_x = torch.from_numpy(data.make_sequences(data.forward_placements(L), L)).long()

    def loss_fn(x):
        t = 1e-3 + (1 - 1e-3) * torch.rand(x.shape[0])
        m = torch.rand(x.shape) < t[:, None]
        logits = model(torch.where(m, vocab.MASK, x))
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1),
                              reduction="none").view(x.shape)
        return ((nll * m).sum(-1) / t).mean()

    cl = torch.compile(loss_fn)

    def step():
        x = train_x[torch.randint(0, len(train_x), (B,))]
        loss = cl(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    t0 = time.perf_counter()
    for _ in range(warmup):  # torch.compile compiles (and may recompile) in the first calls
        step()
    compile_s = time.perf_counter() - t0
    return {"step": step,
            "info": {"warmup_steps": warmup, "warmup_s": round(compile_s, 2),
                     "threads": torch.get_num_threads(), "version": torch.__version__}}


def interleaved(runners: dict, steps: int, repeats: int) -> dict:
    """Alternate one timed chunk of each runner, `repeats` rounds: name -> ms per step list."""
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(timed(run, steps))
    return times


def summarize(times: list[float]) -> dict:
    return {"ms_per_step": statistics.median(times), "ms_all": [round(t, 2) for t in times]}


def main(argv=None) -> int:
    """Exit codes (`toy_jax.cli`): 0 done, 1 failure, 2 bad arguments, 130 interrupted."""
    from toy_jax.cli import run_main

    return run_main("bench_toy.py", _main, argv)


def _main(argv) -> int:
    from toy_jax.cli import OneLineParser

    ap = OneLineParser(prog="bench_toy.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, default=20)
    ap.add_argument("--preset", choices=("paper", "quick"), default="paper")
    ap.add_argument("--steps", type=int, default=10,
                    help="steps per timed chunk (= tracking N; default 10)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed chunks of each kind, interleaved (default 5)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparator")
    ap.add_argument("--no-tracking", action="store_true",
                    help="skip the JAX chunk with the tracking probe")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_toy.json"))
    args = ap.parse_args(argv)
    if args.L < 2 or args.steps < 1 or args.repeats < 1:
        print("bench_toy.py: error: need L >= 2, steps >= 1, repeats >= 1", file=sys.stderr)
        return 2
    res = {"cpu": cpu_model(), "load_average_start": load_average()}
    jx = setup_jax(args.L, args.steps, args.preset, tracking=not args.no_tracking)
    runners = {f"jax_{k}": v for k, v in jx["runners"].items()}
    if not args.no_torch:
        tc = setup_torch(args.L, args.preset)
        runners["torch"] = lambda step=tc["step"]: [step() for _ in range(args.steps)]
    times = interleaved(runners, args.steps, args.repeats)
    res["load_average_end"] = load_average()
    j = res["jax"] = dict(jx["info"])
    for k in jx["runners"]:
        j[k] = {**summarize(times[f"jax_{k}"]), **j.pop(k)}
    ms = j["train"]["ms_per_step"]
    j["gflop_per_s"] = j["gflop_per_step"] / (ms / 1e3)
    line = (f"JAX   : {ms:.1f} ms/step, {j['gflop_per_step']:.1f} GFLOP/step, "
            f"{j['gflop_per_s']:.1f} GFLOP/s")
    if "tracking" in j:
        j["tracking_overhead"] = j["tracking"]["ms_per_step"] / ms - 1.0
        line += (f"; with tracking every {args.steps}: {j['tracking']['ms_per_step']:.1f} "
                 f"ms/step ({100 * j['tracking_overhead']:+.1f}%)")
    print(f"CPU   : {res['cpu']}; load average {res['load_average_start']} -> "
          f"{res['load_average_end']}")
    print(line)
    if not args.no_torch:
        t = res["torch"] = {**summarize(times["torch"]), **tc["info"]}
        res["jax_over_torch"] = ms / t["ms_per_step"]
        per_round = [a / b for a, b in zip(times["jax_train"], times["torch"])]
        res["jax_over_torch_per_round"] = [round(r, 3) for r in per_round]
        print(f"torch : {t['ms_per_step']:.1f} ms/step (torch.compile, {t['threads']} threads); "
              f"JAX / torch = {res['jax_over_torch']:.2f} (medians of {args.repeats} "
              f"interleaved chunks of {args.steps} steps; per round "
              f"{min(per_round):.2f}-{max(per_round):.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
