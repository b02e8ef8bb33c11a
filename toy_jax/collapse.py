"""Why does the toy MDM collapse for some seeds? Measure it, and classify seeds by outcome.

    python scripts/diagnose_collapse.py train --init radd --seeds 0 1 2 3 --steps 300 --out DIR
    python scripts/diagnose_collapse.py classify RUN_DIR [RUN_DIR ...] --at 400 --out FILE.json

`train` trains the MDM at the paper preset (Table 8) with the project's own trainer
(`toy_jax.trainer.make_chunk`, all seeds in one vmapped program) and, every `--every` steps,
measures on the raw weights of every seed, over the forward infill queries "a ... [M]":
  * the attention row of the [M] query: weight on itself, on the cue, on the pad keys, its
    entropy (nats; log L is uniform), and the largest scaled attention logit gap
    (max over keys minus the cue's);
  * the output at the [M]: p(`0`), the logit of `0` minus the largest letter logit, p(target);
  * the gradient norm of every parameter on one fixed training batch (fixed t, masks, dropout).
It writes DIR/diagnostics.jsonl (one line per seed and step) and DIR/config.json.

`classify` reads run directories written by `toy_jax/train.py` (or `scripts/toy_grid.py`) and
labels every seed twice: by an early indicator at step `--at` read from metrics.jsonl (the
seed "escaped the pad plateau" when its mean [M]->cue attention weight over forward contexts
is >= 0.5), and, where results.json was written after enough training, by the final forward
completion (`toy_jax.evaluate.forward_status`). The early indicator is what lets 16 seeds be
checked in a few hundred steps; its agreement with the final status is reported wherever both
exist.
"""
# The logic of scripts/diagnose_collapse.py (which only calls `main`); the docstring above is
# its --help text. `render_diagnostics` also builds RESULTS.md's per-step diagnostics tables.
from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from plumbing import io, provenance as pv
from plumbing.cli import OneLineParser as _Parser, UsageError, run_main
from toy_jax import records
from toy_jax.train import build_parser as train_parser, config_from_args

PROG = "diagnose_collapse.py"
ESCAPE_WEIGHT = 0.5  # mean [M]->cue attention weight (forward contexts) that marks an escape
N_QUERIES = 520  # forward infill queries used by the diagnostics (every k-th placement)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the MDM and record collapse diagnostics")
    t.add_argument("--L", type=int, default=20, help="sequence length (default 20)")
    t.add_argument("--init", default="radd", help="initialisation, as train.py --init")
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                   help="seeds, trained together (default 0 1 2 3)")
    t.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    t.add_argument("--every", type=int, default=25, help="diagnostics every N steps (25)")
    t.add_argument("--train-flags", default="",
                   help="further toy_jax/train.py flags, quoted (e.g. \"--ln-bias 0\")")
    t.add_argument("--out", type=Path, required=True, help="output directory")
    c = sub.add_parser("classify", help="label the seeds of run directories")
    c.add_argument("runs", type=Path, nargs="+", help="run directories (config.json, metrics.jsonl)")
    c.add_argument("--at", type=int, default=400,
                   help="step of the early indicator (default 400)")
    c.add_argument("--model", default="mdm", help="model name in the runs (default mdm)")
    c.add_argument("--out", type=Path, default=None, help="JSON file to write (and .md beside)")
    c.add_argument("--no-final", action="store_true",
                   help="ignore results.json (short runs: their end is not a final status)")
    c.add_argument("--note", default="",
                   help="the commands that made the runs (stored in the JSON beside provenance)")
    r = sub.add_parser("record", help="pack a `train` directory into one JSON file (results/)")
    r.add_argument("dir", type=Path, help="directory written by `train`")
    r.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return p


# ------------------------------------------------------------------------------ measurements
def diagnostics_fn(graphdef, mcfg, tcfg, L: int):
    """jit(vmap over seeds) of params -> dict of diagnostics (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from toy_jax import data, vocab
    from toy_jax.losses import loss_for
    from toy_jax.model import apply

    fwd = data.forward_placements(L)
    fwd = fwd[:: max(1, len(fwd) // N_QUERIES)]
    cue_pos, tgt_pos, _, tgt_id = (np.asarray(a) for a in data.query_spec(fwd, "forward"))
    x = data.make_sequences(fwd, L)
    x[np.arange(len(x)), tgt_pos] = vocab.MASK
    x, cue_pos, tgt_pos, tgt_id = map(jnp.asarray, (x, cue_pos, tgt_pos, tgt_id))
    # one fixed training batch (fixed t, masks and dropout) for the gradient norms
    kb, kl, kd = jax.random.split(jax.random.PRNGKey(12345), 3)
    train = jnp.asarray(data.forward_placements(L))
    xb = data.make_sequences(train[jax.random.randint(kb, (tcfg.batch_size,), 0, len(train))], L)
    objective = loss_for(tcfg.objective, tcfg.loss)
    n = jnp.arange(x.shape[0])

    def one(params):
        logits, att = apply(graphdef, params, x, return_attn=True)
        w = att.weights_BxHxLxL[n, :, tgt_pos].mean(1)  # (N, L): the [M] row, head-mean
        s = att.scores_BxHxLxL[n, :, tgt_pos].mean(1) / np.sqrt(mcfg.d_head)
        lg = logits[n, tgt_pos]  # (N, T)
        p = jax.nn.softmax(lg, -1)
        w_self, w_cue = w[n, tgt_pos], w[n, cue_pos]
        out = {
            "w_self": w_self.mean(), "w_cue": w_cue.mean(),
            "w_pad": (1.0 - w_self - w_cue).mean(),
            "entropy": (-(w * jnp.log(jnp.clip(w, 1e-30))).sum(-1)).mean(),
            "logit_gap_max_minus_cue": (s.max(-1) - s[n, cue_pos]).mean(),
            "p_pad": p[:, vocab.PAD].mean(),
            "logit_pad_minus_best_letter": (lg[:, vocab.PAD] - lg[:, 1:].max(-1)).mean(),
            "p_target": p[n, tgt_id].mean(),
        }
        grads = jax.grad(lambda q: objective(
            lambda z: apply(graphdef, q, z, dropout_key=kd), kl, xb, tcfg.t_eps))(params)
        for k, g in grads.items():
            out[f"gnorm_{k}"] = jnp.sqrt(sum(jnp.sum(jnp.square(a))
                                             for a in jax.tree.leaves(g)))
        return out

    return jax.jit(jax.vmap(one))


def run_train(args) -> dict:
    import jax
    import numpy as np

    from toy_jax.model import graphdef_for
    from toy_jax.trainer import init_states, make_chunk

    flags = ["--model", "mdm", "--L", str(args.L), "--init", args.init, "--steps", str(args.steps),
             "--track-every", str(args.every), "--seed", *map(str, args.seeds),
             *shlex.split(args.train_flags)]
    cfg = config_from_args(train_parser().parse_args(flags))
    mcfg, tcfg = cfg.configs_for("mdm")
    gd = graphdef_for(mcfg)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(
        {"flags": flags, "run_config": cfg.to_dict(), "provenance": provenance()}, indent=2) + "\n")
    state = init_states(mcfg, tcfg, cfg.seeds)
    chunk = make_chunk(gd, mcfg, tcfg, cfg.L, args.every, True)
    diag = diagnostics_fn(gd, mcfg, tcfg, cfg.L)
    path = args.out / "diagnostics.jsonl"
    path.write_text("")
    t0 = time.perf_counter()
    rows = []
    for step in [0] + list(range(args.every, args.steps + 1, args.every)):
        if step:
            state, m = chunk(state)
            m = jax.device_get(m)
        else:
            m = {}
        d = jax.device_get(diag(state.params))
        with open(path, "a") as f:
            for i, s in enumerate(cfg.seeds):
                row = {"seed": s, "step": step, **{k: float(np.mean(v[i])) for k, v in d.items()},
                       **{k: float(np.mean(m[k][i])) for k in ("loss", "attn_fwd_weight",
                                                               "attn_rev_weight") if k in m}}
                rows.append(row)
                f.write(json.dumps(row) + "\n")
        print(f"step {step:5d}  {time.perf_counter() - t0:7.0f} s  w_cue "
              + " ".join(f"{float(np.mean(d['w_cue'][i])):.2f}" for i in range(len(cfg.seeds))),
              flush=True)
    return {"rows": rows}


def provenance() -> dict:
    """The provenance record of this process (`plumbing.provenance.record`)."""
    return pv.record()


DIAG_STEPS = (0, 50, 100, 150, 200, 225, 250, 275, 300)
BODY = ("w_qkv", "w_out", "embed", "w_mlp1", "w_mlp2")


def record(d: Path) -> dict:
    """config.json + diagnostics.jsonl of a `train` directory as one JSON-able dict."""
    cfg = json.loads((d / "config.json").read_text())
    rows = [json.loads(l) for l in (d / "diagnostics.jsonl").read_text().splitlines() if l]
    if not rows:
        raise ValueError(f"{d}: no diagnostics rows")
    return {"command": "python scripts/diagnose_collapse.py train " + " ".join(cfg["flags"]),
            "provenance": cfg["provenance"], "run_config": cfg["run_config"], "rows": rows}


def render_diagnostics(rec: dict, steps=DIAG_STEPS) -> str:
    """Markdown: per seed and step, the [M] attention row, the pad output and the gradient split."""
    head = ("| seed | step | loss | [M]->itself | [M]->cue | [M]->pads | entropy (nats) | "
            "logit gap max-cue | p(`0`) | grad norm: head | grad norm: attention+MLP+embeddings |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rec["rows"], key=lambda r: (r["seed"], r["step"])):
        if r["step"] not in steps:
            continue
        body = sum(r[f"gnorm_{k}"] ** 2 for k in BODY if f"gnorm_{k}" in r) ** 0.5
        head_g = (r["gnorm_w_head"] ** 2 + r["gnorm_b_head"] ** 2) ** 0.5
        loss = f"{r['loss']:.1f}" if "loss" in r else "–"
        lines.append(f"| {r['seed']} | {r['step']} | {loss} | {r['w_self']:.3f} | {r['w_cue']:.3f} | "
                     f"{r['w_pad']:.3f} | {r['entropy']:.2f} | {r['logit_gap_max_minus_cue']:.1f} | "
                     f"{r['p_pad']:.2f} | {head_g:.3g} | {body:.3g} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- classification
def classify_run(run: Path, at: int, model: str = "mdm", final: bool = True) -> dict:
    """Per seed: early indicator at step `at` and, if results.json exists, the final status."""
    from toy_jax.evaluate import forward_status  # lazy: loads jax

    cfg = records.read_config(run)
    rows = records.read_metrics(run, model, tracked=True)
    if not rows:
        raise UsageError(f"{run}: no tracked metrics of model {model!r}")
    res = records.read_results(run) if final else None
    final_step = max(r["step"] for r in rows)
    if at > final_step:
        raise UsageError(f"{run}: --at {at} is past the last tracked step {final_step}")
    seeds = []
    for s in cfg["seeds"]:
        mine = sorted((r for r in rows if r["seed"] == s), key=lambda r: r["step"])
        early = min(mine, key=lambda r: abs(r["step"] - at))
        first = next((r["step"] for r in mine if r["attn_fwd_weight"] >= ESCAPE_WEIGHT), None)
        entry = {"seed": s, "at_step": early["step"],
                 "attn_fwd_weight": round(early["attn_fwd_weight"], 4),
                 "loss": round(early["loss"], 3),
                 "escaped": bool(early["attn_fwd_weight"] >= ESCAPE_WEIGHT),
                 "first_escape_step": first}
        if res is not None:
            w = records.headline(res, model)
            fc = records.reading(res, s, model, w)["forward"]["completion"]["topk_success"]
            entry.update(final_step=final_step, final_weights=w,
                         final_forward_completion=round(fc, 4), final_status=forward_status(fc))
        seeds.append(entry)
    m = cfg["model"]
    return {"run": str(run), "L": cfg["L"], "init": m.get("init"),
            "model_config": m, "steps": cfg["train"]["steps"], "seeds": seeds,
            "n_seeds": len(seeds), "n_escaped": sum(e["escaped"] for e in seeds)}


def render_md(runs: list[dict], at: int) -> str:
    lines = [f"Early indicator at step {at}: a seed escaped the pad plateau when its mean "
             f"[M]->cue attention weight over forward contexts is >= {ESCAPE_WEIGHT}.", "",
             "| run | L | init | seeds escaped | per seed (weight at step) | final status |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        per = " ".join(f"{e['seed']}:{e['attn_fwd_weight']:.2f}" for e in r["seeds"])
        fin = " ".join(f"{e['seed']}:{e['final_status']}" for e in r["seeds"]
                       if "final_status" in e) or "-"
        lines.append(f"| {r['run']} | {r['L']} | {r['init']} | {r['n_escaped']}/{r['n_seeds']}"
                     f" | {per} | {fin} |")
    return "\n".join(lines) + "\n"


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "record":
        rec = record(args.dir)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(args.out, json.dumps(rec, indent=1) + "\n")
        print(render_diagnostics(rec), end="")
        return 0
    if args.cmd == "train":
        if args.steps % args.every:
            raise UsageError("--steps must be a multiple of --every")
        try:
            run_train(args)
        except ValueError as e:  # a bad train.py flag or config value
            raise UsageError(str(e)) from e
        print(f"diagnostics: {args.out / 'diagnostics.jsonl'}")
        return 0
    for r in args.runs:
        if not (r / "config.json").is_file():
            raise UsageError(f"{r} is not a run directory (no config.json)")
    runs = [classify_run(r, args.at, args.model, final=not args.no_final) for r in args.runs]
    md = render_md(runs, args.at)
    print(md, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(args.out, json.dumps({"at": args.at, "escape_weight": ESCAPE_WEIGHT,
                                            "runs_made_by": args.note, "runs": runs,
                                            "provenance": provenance()}, indent=2) + "\n")
        io.write_text(args.out.with_suffix(".md"), md)
    return 0


def main(argv=None) -> int:
    """scripts/diagnose_collapse.py. Exit codes (`plumbing.cli`): 0 done, 1 failure, 2 bad
    arguments, 130 interrupted."""
    return run_main(PROG, _main, argv)
