"""LoRA finetuning on one direction, periodic evaluation in both, checkpoints and resume (Appendix D).

Run directory:
  config.json         the TrainConfig, what it resolved to, and provenance: git commit, library
                      versions, model hub revision or local path, data checksum (earlier starts of
                      a resumed run in provenance_history)
  dataset.json        the exact train / forward / reverse examples (incl. the Parent-Child selection)
  metrics.jsonl       one line per epoch (loss) and per evaluation (accuracies)
  checkpoints/epoch_XXXX/   LoRA adapter (+ optimizer/trainer state in the latest one)
  best_forward/, best_reverse/, final/   LoRA adapters
  predictions.jsonl   the final evaluation's answers
  results.json        forward / reverse exact-match accuracy (fractions), best and final

The LoRA settings (rank, alpha, dropout, target modules) and the sampler settings of the
evaluations (generation length, block length, steps, temperature, remasking rule, threshold,
prefix cache) are TrainConfig fields: part of config.json and of the run's identity.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from largescale_torch import constants as C
from largescale_torch.batching import (
    MDM_PAD_TO,
    arm_train_batch,
    encode,
    mdm_response,
    mdm_train_batch,
    turn_end_id,
)
from largescale_torch.constants import ConfigError
from largescale_torch.data import build_task
from largescale_torch.data.registry import canonical_dataset, check_dataset_direction, data_provenance
from largescale_torch.data.person_description import D2P_COMPLETIONS
from largescale_torch.evaluation import MATCH_RULE, PREFIX_RULE, EvalConfig, evaluate_directions
from largescale_torch.losses import align_logits, arm_loss, maskable_positions, mdm_corrupt, mdm_loss
from largescale_torch.modeling import add_lora, load_base, model_source, pick_dtype, resolve_model
from plumbing.io import atomic_path, write_json
from plumbing.provenance import record as provenance_record

REPORT_TO = ("none", "wandb", "tensorboard")
# Fields that may change when an existing run directory is resumed.
RESUMABLE_CHANGES = ("epochs", "report_to", "eval_batch_size")
# Not part of a run's identity: the run directory itself (however it is spelled).
IDENTITY_EXEMPT = ("out",)
OBJECTIVES = ("sft", "pretrain")


@dataclass(frozen=True)
class TrainConfig:
    model: str
    dataset: str
    direction: str
    seed: int
    out: str
    epochs: int = C.EPOCHS
    lr: float | None = None  # None: the Appendix D value for the model family and dataset
    batch_size: int = C.BATCH_SIZE  # global batch, split across data-parallel processes
    weight_decay: float = C.WEIGHT_DECAY
    lora_r: int = C.LORA_RANK
    lora_alpha: int = C.LORA_ALPHA
    lora_dropout: float = C.LORA_DROPOUT
    lora_targets: tuple[str, ...] = C.LORA_TARGET_MODULES  # Appendix D: the attention projections
    eval_every: int = C.CHECKPOINT_EVERY
    save_every: int = C.CHECKPOINT_EVERY
    grad_clip: float = C.GRAD_CLIP
    mask_eps: float = C.MASK_EPS
    data_dir: str | None = None
    data_seed: int = 0
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = 32
    dtype: str = "auto"
    report_to: str = "none"
    # Protocol choices (defaults follow the paper / LLaDA's reference; see the README):
    chat_template: bool = True  # prompts inside each Instruct model's chat template
    mdm_pad_to: str = "batch"  # LLaDA SFT: EOS-pad answers to the longest in the mini-batch ("gen_length": to 32)
    d2p_completions: str = "name"  # D2P training answers: bare names ("verbatim": upstream text)
    # Train every weight instead of a LoRA adapter (the CPU miniature, largescale_torch/mini/).
    full_finetune: bool = False
    # Sampler of every evaluation (Appendix D / LLaDA's generate.py); built into an EvalConfig by
    # `eval_config`. gen_length is also the ARMs' max new tokens and the MDM answer budget in training.
    gen_length: int = C.GEN_LENGTH
    block_length: int = C.BLOCK_LENGTH
    sampler_steps: int = C.SAMPLER_STEPS
    temperature: float = C.TEMPERATURE
    remasking: str = C.SAMPLER_REMASKING
    threshold: float | None = None  # confidence-threshold parallel decoding (None: a fixed schedule)
    prefix_cache: bool = False
    # Loss of every step: "sft" (the paper's finetuning: answer tokens only) or "pretrain" (each
    # model's pretraining loss over prompt + answer: losses.mdm_pretrain_loss / next-token on all).
    objective: str = "sft"

    def validate(self) -> None:
        """Raise ConfigError (exit code 2) on any bad field."""
        check_dataset_direction(self.dataset, self.direction)
        validate_lora(self.lora_r, self.lora_alpha, self.lora_dropout, self.lora_targets)
        for name in ("epochs", "batch_size", "eval_every", "save_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if self.report_to not in REPORT_TO:
            raise ConfigError(f"unknown --report-to {self.report_to!r}; choose one of {', '.join(REPORT_TO)}")
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"unknown --dtype {self.dtype!r}; choose auto, bf16 or fp32")
        for name in ("max_train_examples", "max_eval_examples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if self.mdm_pad_to not in MDM_PAD_TO:
            raise ConfigError(f"unknown --mdm-pad-to {self.mdm_pad_to!r}; choose one of {', '.join(MDM_PAD_TO)}")
        if self.d2p_completions not in D2P_COMPLETIONS:
            raise ConfigError(f"unknown --d2p-completions {self.d2p_completions!r}; "
                              f"choose one of {', '.join(D2P_COMPLETIONS)}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown --objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        eval_config(self).validate()


def validate_lora(r: int, alpha: float, dropout: float, targets: tuple[str, ...]) -> None:
    """LoRA settings (Appendix D: r = 32, alpha = 64 on the attention projections)."""
    if r < 1:
        raise ConfigError(f"--lora-r must be >= 1, got {r}")
    if not (alpha > 0 and math.isfinite(alpha)):
        raise ConfigError(f"--lora-alpha must be a positive number, got {alpha}")
    if not 0 <= dropout < 1:
        raise ConfigError(f"--lora-dropout must be in [0, 1), got {dropout}")
    if not targets or any(not t or not isinstance(t, str) for t in targets):
        raise ConfigError("--lora-targets needs at least one module name (e.g. q_proj k_proj v_proj o_proj)")


def eval_config(cfg, logits_shift: bool = False, batch_size: int | None = None) -> EvalConfig:
    """The one place a config's sampler fields become an EvalConfig (finetuning and evaluate.py).

    `cfg` has the sampler fields of TrainConfig; `logits_shift` comes from the model (Dream).
    """
    return EvalConfig(max_new_tokens=cfg.gen_length, gen_length=cfg.gen_length, block_length=cfg.block_length,
                      steps=cfg.sampler_steps, temperature=cfg.temperature, remasking=cfg.remasking,
                      threshold=cfg.threshold, prefix_cache=cfg.prefix_cache, logits_shift=logits_shift,
                      batch_size=cfg.eval_batch_size if batch_size is None else batch_size,
                      chat_template=cfg.chat_template)


def lora_model(base, r: int, alpha: float, dropout: float, targets: tuple[str, ...]):
    """`modeling.add_lora`, with a target module the model lacks reported as a bad argument.

    peft only refuses when no target matches; every name given must match here, so a misspelt
    one is not silently left without an adapter.
    """
    present = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    missing = [t for t in targets if t not in present]
    if missing:
        raise ConfigError(f"--lora-targets: the model has no module named {', '.join(missing)}")
    try:
        return add_lora(base, r, alpha, dropout, tuple(targets))
    except ValueError as err:
        raise ConfigError(f"--lora-targets {' '.join(targets)}: {str(err).splitlines()[0]}") from None


def paper_lr(family: str, dataset: str) -> float:
    """Appendix D learning rate for a model family and dataset."""
    if family not in C.LEARNING_RATES:
        raise ConfigError(f"no Appendix D learning rate for model family {family!r}; pass --lr")
    table = C.LEARNING_RATES[family]
    return table.get(dataset, table["default"])


def _check_report_backend(name: str) -> None:
    module = {"wandb": "wandb", "tensorboard": "tensorboard"}.get(name)
    if module and importlib.util.find_spec(module) is None:
        raise ConfigError(f"--report-to {name} needs the {module} package (pip install {module})")


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest checkpoint with trainer state (the one a rerun resumes from), if any."""
    ckpts = sorted(p for p in (Path(out) / "checkpoints").glob("epoch_*") if (p / "trainer_state.pt").is_file())
    return ckpts[-1] if ckpts else None


_latest_checkpoint = latest_checkpoint


def canonical_out(out: str) -> str:
    """The run directory as an absolute path, so `./run2` and `/abs/run2` name the same run."""
    return str(Path(out).expanduser().resolve())


LIBRARIES = ("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors", "numpy", "huggingface_hub")


def provenance(spec, data_dir: str | None, dataset: str) -> dict:
    """The run's provenance (`plumbing.provenance.record`: commit, dirty, date, machine, library
    versions) with the model source/revision and the data checksum. Runs made before this format
    hold the commit under "git" (read it with `plumbing.provenance.commit_of`)."""
    return provenance_record(libraries=LIBRARIES, model=model_source(spec),
                             data=data_provenance(dataset, data_dir))


def _identity(config: dict) -> dict:
    """The fields that name a run, as JSON stores them; fields added since a run was made take
    their defaults, which is what that run used, so old run directories still resume."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    full = json.loads(json.dumps({**defaults, **config}))  # tuples and lists compare alike
    return {k: v for k, v in full.items() if k not in RESUMABLE_CHANGES and k not in IDENTITY_EXEMPT}


def _existing_record(cfg: TrainConfig) -> dict | None:
    """An existing run directory's config.json, refused (ConfigError) when it holds another run.

    Read-only: called before anything is loaded or written, and again right before writing.
    """
    cfg_path = Path(cfg.out) / "config.json"
    if not cfg_path.is_file():
        return None
    try:
        old = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{cfg_path} is not valid JSON ({err.msg}); use another --out") from None
    a, b = _identity(old.get("config", {})), _identity(dataclasses.asdict(cfg))
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise ConfigError(f"{cfg.out} holds a run with a different config ({', '.join(diff)}); use another --out")
    return old


def _prepare_out(cfg: TrainConfig, resolved: dict, prov: dict | None = None) -> None:
    """Create the run directory, or check that an existing one holds the same run."""
    out = Path(cfg.out)
    cfg_path = out / "config.json"
    record = {"config": dataclasses.asdict(cfg), "resolved": resolved}
    old = _existing_record(cfg)
    if old is not None:
        record["provenance_history"] = old.get("provenance_history", []) + (
            [old["provenance"]] if "provenance" in old else [])
    if prov is not None:
        record["provenance"] = prov
    out.mkdir(parents=True, exist_ok=True)
    write_json(cfg_path, record)


def accuracy_record(ev: dict, best: dict | None = None) -> dict:
    """results.json's accuracy entries from an `evaluate_directions` result (finetuning and evaluate.py).

    `best`: {direction: (accuracy, epoch)} over training's evaluations; None for a single evaluation,
    whose best is its final value (epoch None).
    """
    rec = {}
    for d in ("forward", "reverse"):
        b_acc, b_epoch = best[d] if best is not None else (ev[d]["exact"], None)
        rec[d] = {"final": ev[d]["exact"], "best": max(b_acc, ev[d]["exact"]), "best_epoch": b_epoch,
                  "n": ev[d]["n"], "forward_passes_per_query": ev[d].get("forward_passes_per_query")}
    rec["prefix_match"] = {"forward_final": ev["forward"]["prefix"], "reverse_final": ev["reverse"]["prefix"]}
    return rec


def write_predictions(path: Path, ev: dict) -> None:
    """One JSON line per query (direction, prompt, target, accepted, prediction, exact, prefix), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for d in ("forward", "reverse"):
            for r in ev[d]["rows"]:
                fh.write(json.dumps({"direction": d, **r}, ensure_ascii=False) + "\n")


def _save_adapter(model, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


@dataclass
class _Session:
    """Where this run happens: its (checked) config, the Accelerator and the run directory."""
    cfg: TrainConfig
    accelerator: object
    out: Path

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    def log(self, row: dict) -> None:
        """One line of metrics.jsonl (main process), and the numbers to the tracker, if any."""
        if self.main:
            with open(self.out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
        if self.cfg.report_to != "none":
            self.accelerator.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=row["epoch"])


@dataclass
class _Loaded:
    """The model, its tokenizer and the examples of a run, as `_load_model_and_data` built them."""
    task: object  # the full task (dataset.json)
    spec: object  # modeling.ModelSpec
    lr: float
    resolved: dict  # config.json's "resolved"
    model: object  # the LoRA-wrapped (or, full_finetune, the bare) base model
    tokenizer: object
    ids: object  # special token ids
    forward: list  # the evaluation queries, cut to max_eval_examples
    reverse: list
    encoded: list  # the training examples, cut to max_train_examples and tokenized
    end_id: int  # the token that closes every answer


def _checked_config(cfg: TrainConfig) -> TrainConfig:
    """Validate `cfg` and canonicalize its run directory and dataset name; refuse (ConfigError)
    a missing report backend or a run directory that holds another run, before anything loads."""
    cfg.validate()
    cfg = dataclasses.replace(cfg, out=canonical_out(cfg.out), dataset=canonical_dataset(cfg.dataset))
    _check_report_backend(cfg.report_to)
    _existing_record(cfg)  # refuse another run's directory before loading anything
    return cfg


def _session(cfg: TrainConfig) -> _Session:
    """Start the Accelerator (mixed precision, tracker) and check the batch splits over its processes."""
    from accelerate import Accelerator

    accelerator = Accelerator(
        mixed_precision="bf16" if pick_dtype(cfg.dtype) == torch.bfloat16 else "no",
        log_with=None if cfg.report_to == "none" else cfg.report_to,
        project_dir=cfg.out,
    )
    world = accelerator.num_processes
    if cfg.batch_size % world:
        raise ConfigError(f"--batch-size {cfg.batch_size} is not divisible by {world} processes")
    return _Session(cfg, accelerator, Path(cfg.out))


def _load_model_and_data(s: _Session) -> _Loaded:
    """Build the task, load the base model (+ LoRA, seeded by cfg.seed) and tokenize the training
    examples. Everything that can refuse the config (LoRA targets, over-long answers) runs here,
    before the run directory is written."""
    cfg, accelerator = s.cfg, s.accelerator
    task = build_task(cfg.dataset, cfg.direction, data_dir=cfg.data_dir, seed=cfg.data_seed,
                      d2p_completions=cfg.d2p_completions)
    if s.main:
        spec = resolve_model(cfg.model, cfg.data_dir)  # builds a tiny preset once
    accelerator.wait_for_everyone()
    spec = resolve_model(cfg.model, cfg.data_dir)
    lr = cfg.lr if cfg.lr is not None else paper_lr(spec.family, cfg.dataset)
    dtype = pick_dtype(cfg.dtype)
    resolved = {"model_path": spec.path, "family": spec.family, "is_mdm": spec.is_mdm, "lr": lr,
                "dtype": str(dtype).replace("torch.", ""), "num_processes": s.world,
                "counts": {"train": len(task.train), "forward": len(task.forward), "reverse": len(task.reverse)}}
    base, tokenizer, ids = load_base(spec, dtype)
    torch.manual_seed(cfg.seed)
    model = base if cfg.full_finetune else lora_model(base, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout,
                                                       cfg.lora_targets)
    train = list(task.train[: cfg.max_train_examples])
    forward = list(task.forward[: cfg.max_eval_examples])
    reverse = list(task.reverse[: cfg.max_eval_examples])
    encoded = [encode(tokenizer, e.prompt, e.target, chat=cfg.chat_template) for e in train]
    end_id = turn_end_id(tokenizer) if cfg.chat_template else ids.eos  # closes every answer
    if spec.is_mdm:
        for e in encoded:
            mdm_response(e.completion, ids.eos, cfg.gen_length, end_id)  # fail early on over-long completions
    return _Loaded(task=task, spec=spec, lr=lr, resolved=resolved, model=model, tokenizer=tokenizer, ids=ids,
                   forward=forward, reverse=reverse, encoded=encoded, end_id=end_id)


def _write_run_record(s: _Session, d: _Loaded) -> None:
    """config.json (with provenance) and dataset.json, by the main process; all processes wait."""
    if s.main:
        prov = provenance(d.spec, s.cfg.data_dir, s.cfg.dataset)
        _prepare_out(s.cfg, d.resolved, prov)
        write_json(s.out / "dataset.json", d.task.to_dict())
    s.accelerator.wait_for_everyone()


def _optimizer(cfg: TrainConfig, model, lr: float):
    """AdamW over the trainable parameters; returns (parameters, optimizer)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return params, torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def _resume(s: _Session, model, optimizer) -> tuple[int, dict]:
    """Load the latest checkpoint with trainer state, if any, into `model` and `optimizer`.

    Returns (first epoch to train, best {direction: (accuracy, epoch)}); a fresh run starts at
    epoch 1 with no best. The main process drops metrics.jsonl's lines of epochs to be redone.
    """
    start_epoch, best = 1, {"forward": (-1.0, 0), "reverse": (-1.0, 0)}
    ckpt = _latest_checkpoint(s.out)
    if ckpt is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if s.cfg.full_finetune:
            model.load_state_dict(load_file(str(ckpt / "model.safetensors")))
        else:
            set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors")))
        state = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"] + 1
        best = {k: tuple(v) for k, v in state["best"].items()}
    if s.main:
        metrics_path = s.out / "metrics.jsonl"
        kept = []
        if metrics_path.is_file():
            kept = [l for l in metrics_path.read_text().splitlines() if json.loads(l)["epoch"] < start_epoch]
        metrics_path.write_text("".join(l + "\n" for l in kept))
    return start_epoch, best


def _batch_loss(s: _Session, d: _Loaded, model, rows: list, gen: torch.Generator):
    """The loss of one process's rows: MDM (masked answer, or all tokens for "pretrain") or next-token."""
    cfg, ids, spec, device = s.cfg, d.ids, d.spec, s.accelerator.device
    if spec.is_mdm:
        bt = mdm_train_batch(rows, ids.pad, ids.eos, cfg.gen_length, end_id=d.end_id, pad_to=cfg.mdm_pad_to)
        bt = {k: v.to(device) for k, v in bt.items()}
        # "pretrain": every real token maskable, prompt included (= losses.mdm_pretrain_loss)
        maskable = maskable_positions(bt["response_mask"] if cfg.objective == "sft" else
                                      bt["attention_mask"], bt["attention_mask"], spec.logits_shift)
        noisy, masked, p_mask = mdm_corrupt(bt["input_ids"], maskable, ids.mask, cfg.mask_eps, gen)
        logits = model(input_ids=noisy, attention_mask=bt["attention_mask"],
                       position_ids=bt["position_ids"]).logits
        logits = align_logits(logits, spec.logits_shift)  # Dream: token i's prediction sits at i - 1
        return mdm_loss(logits, bt["input_ids"], masked, p_mask, maskable)
    bt = arm_train_batch(rows, ids.pad, ids.eos, d.end_id)
    bt = {k: v.to(device) for k, v in bt.items()}
    logits = model(input_ids=bt["input_ids"], attention_mask=bt["attention_mask"]).logits
    labels = bt["labels"] if cfg.objective == "sft" else torch.where(
        bt["attention_mask"].bool(), bt["input_ids"], -100)  # "pretrain": the prompt too
    return arm_loss(logits, labels)


def _train_epoch(s: _Session, d: _Loaded, model, optimizer, params, epoch: int, bar) -> float:
    """One pass over the training examples in the epoch's seeded order; returns the mean loss.

    The order, dropout and masking draw from seeds of (seed, epoch[, rank]) alone, so a resumed
    run repeats an uninterrupted one exactly.
    """
    cfg, accelerator, rank = s.cfg, s.accelerator, s.rank
    per_proc = cfg.batch_size // s.world
    n_batches = math.ceil(len(d.encoded) / cfg.batch_size)
    model.train()
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(d.encoded))
    torch.manual_seed(_epoch_seed(cfg.seed, epoch, rank))  # dropout; resume-exact
    gen = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch, rank))
    losses = []
    for b in range(n_batches):
        batch_idx = order[b * cfg.batch_size: (b + 1) * cfg.batch_size]
        mine = batch_idx[rank * per_proc: (rank + 1) * per_proc]
        weight = 1.0
        if len(mine) == 0:  # short last batch: keep every process in the gradient all-reduce
            mine, weight = batch_idx[:1], 0.0
        loss = _batch_loss(s, d, model, [d.encoded[i] for i in mine], gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at epoch {epoch}")
        accelerator.backward(loss * weight)
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.update(1)
    return float(np.mean(losses))


def _evaluate(s: _Session, d: _Loaded, model, eval_cfg: EvalConfig) -> dict:
    """Both directions' exact match (`evaluate_directions`) of the model as it is now."""
    model.eval()
    return evaluate_directions(s.accelerator.unwrap_model(model), d.tokenizer, d.ids, d.forward, d.reverse,
                               d.spec.is_mdm, eval_cfg, s.accelerator, progress=s.main)


def _evaluate_and_select(s: _Session, d: _Loaded, model, eval_cfg: EvalConfig, epoch: int, best: dict) -> dict:
    """Evaluate at `epoch`, log the accuracies, and update `best` in place, saving best_<direction>/
    whenever a direction improves; returns the evaluation."""
    ev = _evaluate(s, d, model, eval_cfg)
    s.log({"epoch": epoch, "forward_exact": ev["forward"]["exact"], "reverse_exact": ev["reverse"]["exact"],
           "forward_prefix": ev["forward"]["prefix"], "reverse_prefix": ev["reverse"]["prefix"]})
    for direction in ("forward", "reverse"):
        if ev[direction]["exact"] > best[direction][0]:
            best[direction] = (ev[direction]["exact"], epoch)
            if s.main:
                _save_adapter(s.accelerator.unwrap_model(model), s.out / f"best_{direction}")
    return ev


def _save_checkpoint(s: _Session, model, optimizer, epoch: int, best: dict) -> None:
    """checkpoints/epoch_XXXX/: the adapter, and the trainer state (optimizer, epoch, best), which
    only the latest checkpoint keeps. All processes wait for the main one."""
    if s.main:
        unwrapped = s.accelerator.unwrap_model(model)
        ckdir = s.out / "checkpoints" / f"epoch_{epoch:04d}"
        _save_adapter(unwrapped, ckdir)
        with atomic_path(ckdir / "trainer_state.pt") as tmp:
            torch.save({"optimizer": optimizer.state_dict(), "epoch": epoch, "best": best}, tmp)
        for old in (s.out / "checkpoints").glob("epoch_*/trainer_state.pt"):
            if old.parent != ckdir:
                old.unlink()  # optimizer state only in the latest checkpoint
    s.accelerator.wait_for_everyone()


def _train_epochs(s: _Session, d: _Loaded, model, optimizer, params, eval_cfg: EvalConfig,
                  start_epoch: int, best: dict) -> tuple[int, dict] | None:
    """Epochs start_epoch..cfg.epochs: train, log the loss, evaluate every eval_every epochs and at
    the last, checkpoint at each evaluation and every save_every epochs. Returns the last
    evaluation as (epoch, result), None when no epoch was left to train."""
    cfg = s.cfg
    n_batches = math.ceil(len(d.encoded) / cfg.batch_size)
    bar = tqdm(total=(cfg.epochs - start_epoch + 1) * n_batches, desc="train", disable=not s.main)
    last_eval = None
    try:  # close the progress bar before any error or interruption message
        for epoch in range(start_epoch, cfg.epochs + 1):
            loss = _train_epoch(s, d, model, optimizer, params, epoch, bar)
            s.log({"epoch": epoch, "loss": loss, "lr": d.lr})
            is_eval = epoch % cfg.eval_every == 0 or epoch == cfg.epochs
            if is_eval:
                last_eval = (epoch, _evaluate_and_select(s, d, model, eval_cfg, epoch, best))
            if is_eval or epoch % cfg.save_every == 0:
                _save_checkpoint(s, model, optimizer, epoch, best)
    finally:
        bar.close()
    return last_eval


def _results(s: _Session, d: _Loaded, eval_cfg: EvalConfig, last_eval: tuple[int, dict], best: dict,
             start: float) -> dict:
    """results.json: accuracies (final and best), the run's settings and provenance, wall time."""
    cfg = s.cfg
    epoch, ev = last_eval
    return {
        **accuracy_record(ev, best),
        "final_epoch": epoch,
        "model": cfg.model, "family": d.spec.family, "is_mdm": d.spec.is_mdm,
        "dataset": cfg.dataset, "direction": cfg.direction, "seed": cfg.seed,
        "match_rule": MATCH_RULE, "secondary_rule": PREFIX_RULE,
        "protocol": {**dataclasses.asdict(eval_cfg), "decoding": ev["decoding"]},
        "config": dataclasses.asdict(cfg), "resolved": d.resolved,
        "provenance": json.loads((s.out / "config.json").read_text()).get("provenance") if s.main else None,
        "wall_time_s": round(time.time() - start, 2),
    }


def _write_outputs(s: _Session, model, ev: dict, results: dict) -> None:
    """final/ adapter, predictions.jsonl and results.json (main process); then close the tracker
    and wait for every process."""
    if s.main:
        _save_adapter(s.accelerator.unwrap_model(model), s.out / "final")
        write_predictions(s.out / "predictions.jsonl", ev)
        write_json(s.out / "results.json", results)
    if s.cfg.report_to != "none":
        s.accelerator.end_training()
    s.accelerator.wait_for_everyone()


def run(cfg: TrainConfig) -> dict:
    """Finetune, evaluate and write the run directory; returns the results dict."""
    cfg = _checked_config(cfg)
    start = time.time()
    s = _session(cfg)
    d = _load_model_and_data(s)
    _write_run_record(s, d)
    params, optimizer = _optimizer(cfg, d.model, d.lr)
    start_epoch, best = _resume(s, d.model, optimizer)
    model, optimizer = s.accelerator.prepare(d.model, optimizer)
    if cfg.report_to != "none":
        s.accelerator.init_trackers("reversal-mdm", config={**dataclasses.asdict(cfg), **d.resolved})
    eval_cfg = eval_config(cfg, logits_shift=d.spec.logits_shift)

    last_eval = _train_epochs(s, d, model, optimizer, params, eval_cfg, start_epoch, best)
    if last_eval is None:  # resumed a finished run: evaluate the final adapter once more
        last_eval = (cfg.epochs, _evaluate(s, d, model, eval_cfg))
    results = _results(s, d, eval_cfg, last_eval, best, start)
    _write_outputs(s, model, last_eval[1], results)
    return results
