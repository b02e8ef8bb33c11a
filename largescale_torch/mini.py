"""A miniature Table 1 on a CPU: small MDM and ARM trained from scratch on a shrunk T-REx-style set.

The two models are the package's own architectures at toy size, built from one random
initialisation per seed: the MDM is a LLaDA checkpoint (OLMo-style names, loaded by
`llada.load_llada` into a bidirectional Llama), the ARM the same weights as a causal
`LlamaForCausalLM`, so they differ only in the attention mask and the loss (Section 2.1).
Both share a word-level tokenizer built from the data (every word one token, so an entity
name is one to three tokens). Training and evaluation are `training.run` with every weight
trained (`TrainConfig.full_finetune`) instead of a LoRA adapter: the LLaDA SFT loss or next-token
loss, the package's low-confidence remasking sampler or greedy decoding, exact match, and the
best accuracy over evaluations (Appendix D's "best forward and reverse accuracies").

The data are the first `n_pairs` (subject, object) pairs of `data.trex.build_trex` with their
five forward phrasings (train = forward evaluation) and five reverse phrasings (reverse
evaluation), selected through `max_train_examples` / `max_eval_examples`: the generator lists
the five phrasings of one pair consecutively, in the same pair order for both directions.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from largescale_torch.constants import SEEDS, ConfigError

N_PHRASINGS = 5  # phrasings per pair and direction in data.trex
MINI_DATASET, MINI_DIRECTION = "trex", "forward"
SPECIALS = ("<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>", "<|unk|>")
BOS, EOS, MASK, UNK = "<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|unk|>"
FAMILIES = ("llada", "llama")  # MDM, ARM


@dataclass(frozen=True)
class MiniConfig:
    """One miniature Table 1: model size, data size and the training recipe shared by both models."""

    n_pairs: int = 30
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    rope_theta: float = 500000.0  # LLaDA's and LLaMA-3's base
    epochs: int = 200
    lr: float = 3e-3
    batch_size: int = 16
    weight_decay: float = 0.1
    eval_every: int = 20
    eval_batch_size: int = 150
    # EOS up to the sampler's 32 positions: a model trained from scratch has never seen the positions
    # that per-batch padding ("batch", LLaDA's guideline for its pretrained model) leaves out.
    mdm_pad_to: str = "gen_length"
    seeds: tuple[int, ...] = SEEDS
    families: tuple[str, ...] = FAMILIES

    def validate(self) -> None:
        for name in ("n_pairs", "hidden", "layers", "heads", "ffn", "epochs", "batch_size", "eval_every",
                     "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ConfigError(f"--hidden {self.hidden} must split into {self.heads} heads of even size")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if not self.seeds:
            raise ConfigError("give at least one seed")
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ConfigError(f"unknown model families {bad}; choose from {', '.join(FAMILIES)}")
        from largescale_torch.data.trex import N_ENTITIES

        if self.n_pairs > N_ENTITIES:
            raise ConfigError(f"--n-pairs must be <= {N_ENTITIES}, got {self.n_pairs}")

    @property
    def n_examples(self) -> int:
        return self.n_pairs * N_PHRASINGS


def mini_task(n_pairs: int):
    """(train, reverse) examples of the first `n_pairs` pairs of the T-REx-style set."""
    from largescale_torch.data import build_task

    task = build_task(MINI_DATASET, MINI_DIRECTION)
    n = n_pairs * N_PHRASINGS
    return task.train[:n], task.reverse[:n]


def word_tokenizer(texts: list[str]):
    """Whitespace-split word-level tokenizer over `texts` (+ LLaDA's special tokens), BOS prepended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in t.split()})
    vocab = {tok: i for i, tok in enumerate((*SPECIALS, *words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS,
                                   mask_token=MASK, unk_token=UNK, additional_special_tokens=["<|eot_id|>"])


def _llada_config(cfg: MiniConfig, tokenizer) -> dict:
    from largescale_torch.presets import llada_config_dict

    return {**llada_config_dict(tokenizer), "d_model": cfg.hidden, "n_heads": cfg.heads, "n_kv_heads": cfg.heads,
            "n_layers": cfg.layers, "mlp_hidden_size": cfg.ffn, "rope_theta": cfg.rope_theta}


def write_models(cfg: MiniConfig, tokenizer, seed: int, dest: Path) -> dict[str, Path]:
    """One random initialisation (seed) saved twice: as a LLaDA checkpoint (MDM) and as a Llama one (ARM)."""
    from transformers import LlamaForCausalLM

    from largescale_torch.llada import llama_config_from_llada, save_llada_checkpoint

    llada_cfg = _llada_config(cfg, tokenizer)
    torch.manual_seed(seed)
    mdm = LlamaForCausalLM(llama_config_from_llada(llada_cfg))
    paths = {"llada": dest / "llada", "llama": dest / "llama"}
    save_llada_checkpoint(mdm.state_dict(), llada_cfg, paths["llada"])
    arm_config = llama_config_from_llada(llada_cfg)
    arm_config.is_causal = True
    arm = LlamaForCausalLM(arm_config)
    arm.load_state_dict(mdm.state_dict())
    arm.save_pretrained(paths["llama"])
    for p in paths.values():
        tokenizer.save_pretrained(p)
    return paths


def train_config(cfg: MiniConfig, model_path: Path, seed: int, out: Path):
    from largescale_torch.training import TrainConfig

    return TrainConfig(model=str(model_path), dataset=MINI_DATASET, direction=MINI_DIRECTION, seed=seed, out=str(out),
                       epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay,
                       eval_every=cfg.eval_every, save_every=cfg.epochs, max_train_examples=cfg.n_examples,
                       max_eval_examples=cfg.n_examples, eval_batch_size=cfg.eval_batch_size, dtype="fp32",
                       full_finetune=True, chat_template=False, mdm_pad_to=cfg.mdm_pad_to)


def run_mini(cfg: MiniConfig, out: str | Path, progress: bool = False) -> dict:
    """Train and evaluate every (family, seed); returns per-run results and the summary table."""
    from largescale_torch.training import run

    cfg.validate()
    out = Path(out)
    _claim_runs_dir(cfg, out)
    start, cpu_start, load_start = time.time(), time.process_time(), os.getloadavg()
    train, reverse = mini_task(cfg.n_pairs)
    tokenizer = word_tokenizer([f"{e.prompt} {e.target}" for e in (*train, *reverse)])
    runs = []
    for seed in cfg.seeds:
        paths = write_models(cfg, tokenizer, seed, out / "init" / f"seed{seed}")
        for family in cfg.families:
            t0 = time.time()
            res = run(train_config(cfg, paths[family], seed, out / family / f"seed{seed}"))
            run_dir = out / family / f"seed{seed}"
            runs.append({"family": family, "seed": seed, "is_mdm": res["is_mdm"],
                         "wall_time_s": round(time.time() - t0, 1), "run_dir": str(run_dir),
                         "reverse_final_answers": reverse_answers(run_dir),
                         **{d: {k: res[d][k] for k in ("final", "best", "best_epoch", "n")}
                            for d in ("forward", "reverse")}})
            if progress:
                r = runs[-1]
                print(f"{family} seed {seed}: forward best {r['forward']['best']:.3f}, reverse best "
                      f"{r['reverse']['best']:.3f} ({r['wall_time_s']:.0f} s)", flush=True)
    return {"config": dataclasses.asdict(cfg), "vocab_size": len(tokenizer), "runs": runs,
            "summary": summarise(runs), "wall_time_s": round(time.time() - start, 1),
            "cpu_time_s": round(time.process_time() - cpu_start, 1), "torch_threads": torch.get_num_threads(),
            "load_average_1min": {"start": round(load_start[0], 2), "end": round(os.getloadavg()[0], 2)},
            "cpu_count": os.cpu_count(), "runs_dir": str(out)}


def _claim_runs_dir(cfg: MiniConfig, out: Path) -> None:
    """Write out/mini_config.json, or refuse a directory that holds runs of another configuration."""
    record = out / "mini_config.json"
    mine = json.loads(json.dumps(dataclasses.asdict(cfg)))
    if record.is_file():
        old = json.loads(record.read_text())
        if old != mine:
            diff = sorted(k for k in set(old) | set(mine) if old.get(k) != mine.get(k))
            raise ConfigError(f"{out} holds miniature runs of another configuration ({', '.join(diff)}); "
                             "use another --runs")
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(mine, indent=2))


ANSWER_KINDS = ("correct", "empty", "a trained object", "other")


def reverse_answers(run_dir: str | Path) -> dict[str, float]:
    """Fractions of the final reverse answers that are correct, empty, one of the trained answers, or other.

    A model trained only forward has been supervised to emit objects, never subjects; this
    shows whether its reverse answers are silence, a memorised forward answer, or new text.
    """
    from largescale_torch.evaluation import normalise

    rows = [json.loads(line) for line in (Path(run_dir) / "predictions.jsonl").read_text().splitlines()]
    objects = {normalise(r["target"]) for r in rows if r["direction"] == "forward"}
    rev = [r for r in rows if r["direction"] == "reverse"]

    def kind(r: dict) -> str:
        p = normalise(r["prediction"])
        return "correct" if r["exact"] else "empty" if not p else "a trained object" if p in objects else "other"

    kinds = [kind(r) for r in rev]
    return {k: kinds.count(k) / max(len(rev), 1) for k in ANSWER_KINDS}


def mean_sem(values: list[float]) -> tuple[float, float]:
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, float("nan")
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def summarise(runs: list[dict]) -> dict:
    """{family: {direction: {which: {"mean", "sem", "per_seed"}}}} in percent."""
    table = {}
    for family in dict.fromkeys(r["family"] for r in runs):
        rs = [r for r in runs if r["family"] == family]
        table[family] = {d: {w: dict(zip(("mean", "sem"), mean_sem([100 * r[d][w] for r in rs])),
                                     per_seed={str(r["seed"]): 100 * r[d][w] for r in rs})
                             for w in ("best", "final")} for d in ("forward", "reverse")}
    return table


LABELS = {"llada": "MDM (LLaDA-style, bidirectional)", "llama": "ARM (Llama, causal)"}


def _cell(c: dict) -> str:
    return f"{c['mean']:.1f}" + ("" if math.isnan(c["sem"]) else f" ± {c['sem']:.1f}")


def render_markdown(result: dict, command: str) -> str:
    """The miniature Table 1 (best over evaluations, as Appendix D logs it) with per-seed values."""
    cfg = result["config"]
    seeds = [str(s) for s in cfg["seeds"]]
    lines = [
        "# Miniature Table 1 (CPU, models trained from scratch)", "",
        f"T-REx-style (synthetic), first {cfg['n_pairs']} pairs x 5 phrasings: train = forward = "
        f"{cfg['n_pairs'] * N_PHRASINGS} queries, reverse = {cfg['n_pairs'] * N_PHRASINGS}. Exact match, %, "
        f"best over evaluations every {cfg['eval_every']} epochs (final in brackets); "
        f"mean ± s.e.m. over seeds {', '.join(seeds)}.", "",
        "| Model | Forward | Reverse | Forward per seed | Reverse per seed |", "|---|---|---|---|---|",
    ]
    for fam, row in result["summary"].items():
        f, r = row["forward"], row["reverse"]
        per = lambda c: ", ".join(f"{c['per_seed'][s]:.1f}" for s in seeds)  # noqa: E731
        lines.append(f"| {LABELS.get(fam, fam)} | {_cell(f['best'])} ({_cell(f['final'])}) | "
                     f"{_cell(r['best'])} ({_cell(r['final'])}) | {per(f['best'])} | {per(r['best'])} |")
    lines += ["", "Final reverse answers (% of queries, mean over seeds): "
              + "; ".join(f"{LABELS.get(fam, fam)}: " + ", ".join(
                  f"{k} {sum(100 * r['reverse_final_answers'][k] for r in rs) / len(rs):.1f}" for k in ANSWER_KINDS)
                  for fam in result["summary"]
                  for rs in [[r for r in result["runs"] if r["family"] == fam and "reverse_final_answers" in r]] if rs)
              + "."]
    lines += [
        "",
        f"Models: {cfg['layers']} layers, hidden {cfg['hidden']}, {cfg['heads']} heads, FFN {cfg['ffn']}, RoPE "
        f"theta {cfg['rope_theta']:g}, word-level vocabulary of {result['vocab_size']} tokens; one random "
        "initialisation per seed shared by the MDM and the ARM. Every weight trained: AdamW lr "
        f"{cfg['lr']:g}, weight decay {cfg['weight_decay']}, batch {cfg['batch_size']}, {cfg['epochs']} epochs; "
        f"MDM answers EOS-padded to {cfg['mdm_pad_to']}; raw prompts (no chat template). Decoding: the package's "
        "LLaDA sampler (32 positions, 32 steps, one block) for the MDM, greedy for the ARM.",
        "",
        f"Wall time {result['wall_time_s'] / 60:.1f} min, CPU time {result['cpu_time_s'] / 60:.1f} min "
        f"({result['torch_threads']} torch thread(s), {result['cpu_count']} cores, 1-minute load average "
        f"{result['load_average_1min']['start']} at the start, {result['load_average_1min']['end']} at the end).",
        "", f"Command: `{command}`", "",
    ]
    return "\n".join(lines)


def plot_curves(result: dict, out: str | Path) -> None:
    """Forward and reverse exact match over epochs, per seed, read from each run's metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    colors = {"llada": "tab:blue", "llama": "tab:orange"}
    for r in result["runs"]:
        rows = [json.loads(l) for l in (Path(r["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
        evals = [row for row in rows if "forward_exact" in row]
        for ax, d in zip(axes, ("forward", "reverse")):
            ax.plot([e["epoch"] for e in evals], [100 * e[f"{d}_exact"] for e in evals], color=colors[r["family"]],
                    alpha=0.8, label=LABELS[r["family"]] if r["seed"] == result["config"]["seeds"][0] else None)
    for ax, d in zip(axes, ("forward", "reverse")):
        ax.set_title(f"{d} exact match (trained: forward)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("% exact (one line per seed)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
