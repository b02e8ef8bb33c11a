"""The miniature Table 1, end to end: pretrain (stage 1), finetune forward (stage 2), read (stage 3).

One job per (seed, model family), run in a pool of `workers` processes with one torch thread each:
 1. the seed's random initialisation (shared by MDM and ARM, `pretrain.init_models`), saved;
 2. stage 1: pretraining on the background corpus with the family's own objective (skipped with
    `pretrain_steps=0`: the earlier from-scratch SFT-only miniature), saved;
 3. per dataset, stage 2 = `training.run` from the pretrained weights, every weight trained with
    the paper's finetuning loss on forward facts only (LLaDA SFT: prompt never masked; ARM:
    next-token loss on the answer), evaluated by exact match (LLaDA sampler / greedy), best over
    evaluations as Appendix D logs it;
 4. stage 3 readings (`readings`) on the finetuned weights and on the controls: the pretrained
    weights before finetuning, the random initialisation, and (MDM) the finetuned weights run with a
    causal attention mask.
A job writes RUNS/FAMILY/seedS/record.json when done; a rerun skips finished jobs.
"""
from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

from largescale_torch.constants import ConfigError
from plumbing import provenance
from plumbing.cli import first_line
from plumbing.io import write_json

FAMILIES = ("llada", "llama")  # MDM, ARM
DEFAULT_SEEDS = (1, 2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class MiniConfig:
    """Model size, data size and the recipe of all three stages, shared by MDM and ARM."""

    datasets: tuple[str, ...] = ("parent_child", "person_description", "trex")
    n_pairs: int = 30  # Parent-Child and T-REx-style facts (Person-Description: its 10 people)
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    rope_theta: float = 10000.0  # head dim 16: LLaDA's 500000 leaves few dims that rotate within 64 tokens
    # Stage 1
    mentions: int = 20  # background sentences per entity name
    pretrain_steps: int = 600
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-3
    seq_len: int = 64
    # Stage 2
    # Presentations of every fact: a dataset with k training phrasings per fact runs ceil(epochs / k)
    # epochs (Parent-Child 1, T-REx-style 5, Person-Description 30), so each fact is seen alike. 400: on
    # seed 1 the MDM's forward exact match is P2C 100 %, T-REx 51 %, P2D 6 % (200: 100, 1, 0 %).
    epochs: int = 400
    lr: float = 3e-3
    batch_size: int = 8  # Appendix D
    weight_decay: float = 0.1
    evals: int = 2  # exact-match evaluations per run, evenly spaced (best over them is reported)
    # "sft": the paper's finetuning (prompt never masked); "pretrain": each model's pretraining loss over
    # prompt + answer (TrainConfig.objective), i.e. continued pretraining on the forward statements.
    finetune_objective: str = "sft"
    eval_batch_size: int = 200
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    families: tuple[str, ...] = FAMILIES
    corpus_seed: int = 0

    def validate(self) -> None:
        # lazy (here and below): corpus and data load numpy, training, readings and pretrain torch
        from largescale_torch.mini.corpus import TASK_NAMES

        for name in ("n_pairs", "hidden", "layers", "heads", "ffn", "mentions", "pretrain_batch", "seq_len",
                     "epochs", "batch_size", "evals", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.pretrain_steps < 0:
            raise ConfigError(f"--pretrain-steps must be >= 0, got {self.pretrain_steps}")
        if self.mentions < 2:
            raise ConfigError(f"--mentions must be >= 2, got {self.mentions}")
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ConfigError(f"--hidden {self.hidden} must split into {self.heads} heads of even size")
        for name in ("lr", "pretrain_lr", "rope_theta"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive number, got {getattr(self, name)}")
        if not self.seeds:
            raise ConfigError("give at least one seed")
        if self.finetune_objective not in ("sft", "pretrain"):
            raise ConfigError(f"unknown --finetune-objective {self.finetune_objective!r}; choose sft or pretrain")
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ConfigError(f"unknown model families {bad}; choose from {', '.join(FAMILIES)}")
        bad = [d for d in self.datasets if d not in TASK_NAMES]
        if bad or not self.datasets:
            raise ConfigError(f"unknown datasets {bad}; choose from {', '.join(TASK_NAMES)}")
        from largescale_torch.data.trex import N_ENTITIES

        if self.n_pairs > N_ENTITIES:
            raise ConfigError(f"--n-pairs must be <= {N_ENTITIES}, got {self.n_pairs}")


def build_data(cfg: MiniConfig, data_dir: str | None):
    """(tasks, background corpus, tokenizer): identical for every seed and both families."""
    from largescale_torch.mini.corpus import (TASKS, all_texts, background_corpus, check_no_leak, mini_task,
                                              word_tokenizer)

    tasks = [mini_task(d, direction, cfg.n_pairs, data_dir) for d, direction in TASKS if d in cfg.datasets]
    names = list(dict.fromkeys(n for t in tasks for n in t.names))
    forbidden = {frozenset(p) for t in tasks for p in t.pairs if all(p)}
    corpus = background_corpus(names, forbidden, cfg.mentions, cfg.corpus_seed)
    check_no_leak(corpus, tasks)
    return tasks, corpus, word_tokenizer(all_texts(tasks, corpus))


def dataset_epochs(cfg: MiniConfig, task) -> int:
    """ceil(cfg.epochs / training phrasings per fact): every fact presented about cfg.epochs times."""
    return max(1, math.ceil(cfg.epochs * len(task.pairs) / len(task.train)))


def _train_config(cfg: MiniConfig, task, model_path: Path, seed: int, out: Path, data_dir: str | None):
    from largescale_torch.training import TrainConfig

    epochs = dataset_epochs(cfg, task)
    return TrainConfig(model=str(model_path), dataset=task.dataset, direction=task.direction, seed=seed,
                       out=str(out), epochs=epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                       weight_decay=cfg.weight_decay, eval_every=max(1, epochs // cfg.evals), save_every=epochs,
                       max_train_examples=task.train_n, max_eval_examples=task.eval_n, data_dir=data_dir,
                       eval_batch_size=cfg.eval_batch_size, dtype="fp32", full_finetune=True, chat_template=False,
                       mdm_pad_to="gen_length", objective=cfg.finetune_objective)


MAX_STATEMENTS = 100  # positive-control statements per dataset, evenly spaced (Person-Description: 10 per person)


def readings(model, tokenizer, ids, task, is_mdm: bool, forward: bool = True) -> dict:
    """Every stage-3 reading of one model on one dataset (see `readings`); `forward=False` (the
    controls) skips the forward rank, the costliest reading and not needed to compare them."""
    from largescale_torch.mini import readings as R

    statements = task.train[:: max(1, math.ceil(len(task.train) / MAX_STATEMENTS))]
    out = {"reverse_rank": R.rank_reading(model, tokenizer, ids, task.reverse, is_mdm, task.names),
           "positive_control": R.positive_control(model, tokenizer, ids, statements, task.reverse, is_mdm),
           "first_token": R.first_token_reading(model, tokenizer, ids, task.reverse, is_mdm)}
    if forward:
        out["forward_rank"] = R.rank_reading(model, tokenizer, ids, task.forward, is_mdm, task.names)
    if is_mdm and task.dataset != "person_description":
        out["attention"] = R.attention_reading(model, tokenizer, ids, task.train, task.reverse)
    return out


def run_job(cfg: MiniConfig, seed: int, family: str, out: str, data_dir: str | None, threads: int = 1) -> dict:
    """Stages 1-3 for one seed and model family; writes and returns OUT/FAMILY/seedS/record.json."""
    import torch
    from transformers import AutoModelForCausalLM

    from largescale_torch.analysis import causal_attention
    from largescale_torch.mini.pretrain import init_models, llada_config, pack, pretrain, save_model
    from largescale_torch.modeling import load_base, resolve_model
    from largescale_torch.training import run

    torch.set_num_threads(threads)
    root = Path(out) / family / f"seed{seed}"
    if (root / "record.json").is_file():
        return json.loads((root / "record.json").read_text())
    t0, cpu0 = time.time(), time.process_time()
    tasks, corpus, tokenizer = build_data(cfg, data_dir)
    is_mdm = family == "llada"
    lcfg = llada_config(cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.rope_theta, tokenizer)
    mdm, arm = init_models(lcfg, seed)
    model = mdm if is_mdm else arm
    init_path = save_model(model, is_mdm, lcfg, tokenizer, root / "init")
    rows = pack(tokenizer, corpus, cfg.seq_len)
    losses = pretrain(model, is_mdm, rows, cfg.pretrain_steps, cfg.pretrain_batch, cfg.pretrain_lr,
                      cfg.weight_decay, seed, tokenizer.mask_token_id) if cfg.pretrain_steps else []
    pre_path = save_model(model, is_mdm, lcfg, tokenizer, root / "pretrained")
    t_pre = time.time() - t0
    random_model, tokenizer, ids = load_base(resolve_model(str(init_path)), torch.float32)
    controls = {"pretrained": model.eval(), "random_init": random_model.eval()}
    record = {"family": family, "seed": seed, "is_mdm": is_mdm, "pretrain_loss_first_last":
              [losses[0], sum(losses[-20:]) / len(losses[-20:])] if losses else None,
              "pretrain_wall_s": round(t_pre, 1), "datasets": {}}
    for task in tasks:
        t1 = time.time()
        run_dir = root / task.dataset
        res = run(_train_config(cfg, task, pre_path, seed, run_dir, data_dir))
        trained = AutoModelForCausalLM.from_pretrained(str(run_dir / "final"), dtype=torch.float32).eval()
        reads = {"trained": readings(trained, tokenizer, ids, task, is_mdm)}
        for name, m in controls.items():
            reads[name] = readings(m, tokenizer, ids, task, is_mdm, forward=False)
        if is_mdm:
            with causal_attention(trained):
                reads["causal_mask"] = readings(trained, tokenizer, ids, task, is_mdm, forward=False)
        record["datasets"][task.dataset] = {
            "direction": task.direction, "run_dir": str(run_dir), "wall_s": round(time.time() - t1, 1),
            **{d: {k: res[d][k] for k in ("final", "best", "best_epoch", "n")} for d in ("forward", "reverse")},
            "readings": reads}
    record["wall_s"], record["cpu_s"] = round(time.time() - t0, 1), round(time.process_time() - cpu0, 1)
    write_json(root / "record.json", record, indent=1)
    return record


def _job(args):
    return run_job(*args)


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
    write_json(record, mine)


def run_mini(cfg: MiniConfig, out: str | Path, data_dir: str | None = None, workers: int = 1,
             progress: bool = False, threads: int = 1) -> dict:
    """All jobs (seed x family), `workers` processes of `threads` torch threads; returns records and provenance."""
    from tqdm.auto import tqdm

    cfg.validate()
    if workers < 1 or threads < 1:
        raise ConfigError(f"--workers and --threads must be >= 1, got {workers} and {threads}")
    out = Path(out).resolve()
    _claim_runs_dir(cfg, out)
    tasks, corpus, tokenizer = build_data(cfg, data_dir)  # fails early on missing data or a leaking corpus
    prov = _provenance(data_dir)  # the code as the jobs start
    start, cpu_start, load_start = time.time(), time.process_time(), os.getloadavg()
    jobs = [(cfg, s, f, str(out), data_dir, threads) for s in cfg.seeds for f in cfg.families]
    bar = tqdm(total=len(jobs), desc="miniature (seed x model)", disable=not progress)
    records = []
    try:
        if workers == 1:
            for j in jobs:
                records.append(run_job(*j))
                bar.update(1)
        else:
            os.environ.setdefault("TQDM_DISABLE", "1")  # workers inherit it: one bar (over jobs), the parent's
            with mp.get_context("spawn").Pool(workers) as pool:
                for r in pool.imap_unordered(_job, jobs):
                    records.append(r)
                    bar.update(1)
    finally:
        bar.close()
    records.sort(key=lambda r: (cfg.seeds.index(r["seed"]), cfg.families.index(r["family"])))
    return {"config": dataclasses.asdict(cfg), "vocab_size": len(tokenizer), "corpus_sentences": len(corpus),
            "tasks": {t.dataset: {"direction": t.direction, "train": len(t.train), "forward": len(t.forward),
                                  "reverse": len(t.reverse), "facts": len(t.pairs)} for t in tasks},
            "corpus_example": corpus[:5], "records": records,
            "wall_time_s": round(time.time() - start, 1),
            "parent_cpu_time_s": round(time.process_time() - cpu_start, 1),
            "workers": workers, "torch_threads_per_worker": threads, "cpu_count": os.cpu_count(),
            "load_average_1min": {"start": round(load_start[0], 2), "end": round(os.getloadavg()[0], 2)},
            "provenance": prov,
            "runs_dir": str(out)}


def _provenance(data_dir: str | None) -> dict:
    """`plumbing.provenance.record` (commit, date, CPU, versions) with the Berglund et al. data
    checksum (provenance of every record)."""
    extra = {}
    try:
        from largescale_torch.data.source import data_checksum, resolve_data_dir

        extra["data"] = data_checksum(resolve_data_dir(data_dir))["sha256"]
    except Exception as err:  # provenance must not fail a finished run
        extra["error"] = first_line(err)
    return provenance.record(libraries=("torch", "transformers", "tokenizers", "numpy"), **extra)
