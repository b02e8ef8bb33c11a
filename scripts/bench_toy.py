"""Benchmark one training step of the toy MDM (paper config, L = 20) in JAX and in PyTorch.

    python scripts/bench_toy.py                 # JAX + torch.compile comparator
    python scripts/bench_toy.py --no-torch --steps 10

Reports ms per step after compilation (median over timed chunks), the achieved GFLOP/s (FLOPs
counted by XLA's cost analysis of the compiled step), the in-loop tracking overhead, and the
same model and step in PyTorch with torch.compile. Writes the numbers to --out as JSON.
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


def bench_jax(L: int, steps: int, repeats: int, preset: str) -> dict:
    import jax

    from toy_jax import configs, trainer
    from toy_jax.model import graphdef_for

    cfg = configs.make_config(L=L, preset=preset, model="mdm",
                              train_overrides=dict(track_every=steps))
    mcfg, tcfg = cfg.configs_for("mdm")
    g = graphdef_for(mcfg)
    out = {}
    for track in (False, True):
        fn = trainer.make_chunk(g, mcfg, tcfg, L, steps, track)
        state = trainer.init_states(mcfg, tcfg, (0,))
        t0 = time.perf_counter()
        state, m = fn(state)
        jax.block_until_ready(m)
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            state, m = fn(state)
            jax.block_until_ready(m)
            times.append((time.perf_counter() - t0) / steps)
        out["tracking" if track else "train"] = {"ms_per_step": 1e3 * statistics.median(times),
                                                 "ms_all": [round(1e3 * t, 2) for t in times],
                                                 "first_call_s": round(compile_s, 2)}
    # FLOPs of one step, from XLA's cost analysis of a 1-step program
    fn1 = trainer.make_chunk(g, mcfg, tcfg, L, 1, False)
    ca = fn1.lower(trainer.init_states(mcfg, tcfg, (0,))).compile().cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    flops = float(ca.get("flops", float("nan")))
    ms = out["train"]["ms_per_step"]
    out["gflop_per_step"] = flops / 1e9
    out["gflop_per_s"] = flops / 1e9 / (ms / 1e3)
    out["tracking_overhead"] = out["tracking"]["ms_per_step"] / ms - 1.0
    out["tracking_every"] = steps
    out["config"] = {"L": L, "d_model": mcfg.d_model, "batch_size": tcfg.batch_size,
                     "n_heads": mcfg.n_heads}
    return out


def bench_torch(L: int, steps: int, repeats: int, preset: str, warmup: int = 8) -> dict:
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
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t0) / steps)
    return {"ms_per_step": 1e3 * statistics.median(times),
            "ms_all": [round(1e3 * t, 2) for t in times], "warmup_steps": warmup,
            "warmup_s": round(compile_s, 2),
            "threads": torch.get_num_threads(), "version": torch.__version__}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, default=20)
    ap.add_argument("--preset", choices=("paper", "quick"), default="paper")
    ap.add_argument("--steps", type=int, default=10, help="steps per timed chunk (= tracking N)")
    ap.add_argument("--repeats", type=int, default=5, help="timed chunks")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparator")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_toy.json"))
    args = ap.parse_args(argv)
    if args.L < 2 or args.steps < 1 or args.repeats < 1:
        print("bench_toy.py: error: need L >= 2, steps >= 1, repeats >= 1", file=sys.stderr)
        return 2
    res = {"jax": bench_jax(args.L, args.steps, args.repeats, args.preset)}
    j = res["jax"]
    print(f"JAX   : {j['train']['ms_per_step']:.1f} ms/step, {j['gflop_per_step']:.1f} GFLOP/step, "
          f"{j['gflop_per_s']:.1f} GFLOP/s; with tracking every {args.steps}: "
          f"{j['tracking']['ms_per_step']:.1f} ms/step ({100 * j['tracking_overhead']:+.1f}%)")
    if not args.no_torch:
        t = res["torch"] = bench_torch(args.L, args.steps, args.repeats, args.preset)
        res["jax_over_torch"] = j["train"]["ms_per_step"] / t["ms_per_step"]
        print(f"torch : {t['ms_per_step']:.1f} ms/step (torch.compile, {t['threads']} threads); "
              f"JAX / torch = {res['jax_over_torch']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
