"""Evaluate a base model or a saved LoRA adapter on any dataset, with no training around it.

The control Table 1 lacks (does the untrained model already answer the reverse question?),
a finetuned run's adapter on another dataset, your own facts, or LLaDA's reversal poems: the
same prompts, sampler, exact-match rule and files as a finetuning run's evaluation (Section 3,
Appendix D), so `scripts/table1.py` reads the results.

Evaluation directory (written under a temporary name and renamed when complete, so an error
or Ctrl-C leaves nothing at --out; rerunning the same evaluation replaces it):
  config.json        the resolved EvalRunConfig, what it resolved to (model, adapter, LoRA
                     settings read from adapter_config.json) and provenance
  dataset.json       the exact forward / reverse examples
  predictions.jsonl  every answer
  results.json       as a finetuning run's (forward / reverse `final` = `best`, `n`, prefix match,
                     protocol, decoding), plus "kind": "evaluation" and "weights": "base" | "adapter";
                     for poems also LLaDA's containment score and the LLaDA paper's Table 4
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from largescale_torch import constants as C
from largescale_torch.constants import ConfigError

ADAPTER_NAMES = ("final", "best_forward", "best_reverse")
# Fields that may differ when an existing evaluation directory is replaced by a rerun.
IDENTITY_EXEMPT = ("out", "eval_batch_size")
SAMPLER_FIELDS = ("gen_length", "block_length", "sampler_steps", "temperature", "remasking", "threshold",
                  "prefix_cache")


@dataclass(frozen=True)
class EvalRunConfig:
    """What `evaluate.py` was asked; None fields are filled by `resolve` (from --run, else defaults)."""

    out: str
    model: str | None = None
    dataset: str | None = None
    direction: str | None = None
    adapter: str | None = None  # a LoRA adapter directory; with `run`, a name inside it (default final)
    run: str | None = None  # a finetune.py run directory: model, data and sampler settings from its config
    data_dir: str | None = None
    data_seed: int | None = None
    d2p_completions: str | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = 32
    chat_template: bool | None = None
    dtype: str = "auto"
    gen_length: int | None = None
    block_length: int | None = None
    sampler_steps: int | None = None
    temperature: float | None = None
    remasking: str | None = None
    threshold: float | None = None
    prefix_cache: bool | None = None


@dataclass(frozen=True)
class ResolvedEval:
    """Every setting of one evaluation, concrete (recorded in config.json; its identity)."""

    out: str
    model: str
    dataset: str
    direction: str
    weights: str  # base | adapter
    adapter: str | None
    run: str | None
    seed: int | None  # the --run's training seed
    data_dir: str | None
    data_seed: int
    d2p_completions: str
    max_eval_examples: int | None
    eval_batch_size: int
    chat_template: bool
    dtype: str
    gen_length: int
    block_length: int
    sampler_steps: int
    temperature: float
    remasking: str
    threshold: float | None
    prefix_cache: bool


def _read_run_config(run: Path) -> dict:
    path = run / "config.json"
    if not path.is_file():
        raise ConfigError(f"--run {run} has no config.json (not a finetune.py run directory)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err.msg})") from None
    if "config" not in record or "model" not in record["config"]:
        raise ConfigError(f"{path} is not a finetune.py config (no config.model)")
    return record["config"]


def _adapter_dir(cfg: EvalRunConfig) -> Path | None:
    if cfg.run is not None:
        name = cfg.adapter or "final"
        path = Path(cfg.run).expanduser() / name
        what = f"--adapter {name} of --run {cfg.run}"
    elif cfg.adapter is not None:
        path, what = Path(cfg.adapter).expanduser(), f"--adapter {cfg.adapter}"
    else:
        return None
    if not path.is_dir():
        hint = f" (choose {', '.join(ADAPTER_NAMES)} or checkpoints/epoch_XXXX)" if cfg.run is not None else ""
        raise ConfigError(f"{what}: {path} does not exist{hint}")
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(f"{what}: {path} holds no LoRA adapter (no adapter_config.json)")
    return path.resolve()


def resolve(cfg: EvalRunConfig) -> ResolvedEval:
    """Fill every None from the --run's config.json, else from the defaults; ConfigError on bad input."""
    # lazy (here and in evaluate): the data package loads numpy, training torch; evaluate.py --help loads neither
    from largescale_torch.data.registry import canonical_dataset, check_dataset_direction, dataset_kind, directions
    from largescale_torch.training import TrainConfig, canonical_out

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    base: dict = {}
    if cfg.run is not None:
        if cfg.model is not None:
            raise ConfigError("--run takes the model from its config.json; drop --model")
        base = {**defaults, **_read_run_config(Path(cfg.run).expanduser())}
        if cfg.dataset is not None and canonical_dataset(cfg.dataset) != base["dataset"]:
            # another dataset than the run's: its direction is asked anew, and the run's cap on
            # evaluation queries (which counted the run's dataset) does not apply
            base = {**base, "dataset": cfg.dataset, "direction": None, "max_eval_examples": None}
    elif cfg.model is None or cfg.dataset is None:
        raise ConfigError("--model and --dataset are needed (or --run DIR to take them from a finetune run)")
    model = cfg.model or base["model"]
    dataset = cfg.dataset or base["dataset"]
    kind = dataset_kind(dataset)
    direction = cfg.direction or base.get("direction")
    if direction is None:
        allowed = directions(dataset)
        if len(allowed) > 1:
            raise ConfigError(f"--direction is needed for {dataset}: {' or '.join(allowed)}")
        direction = allowed[0]
    check_dataset_direction(dataset, direction)
    adapter = _adapter_dir(cfg)

    def pick(name):
        given = getattr(cfg, name)
        if given is not None:
            return given
        if name in base:
            return base[name]
        if kind == "poems":  # LLaDA's eval_reverse.py settings for its own benchmark
            poem = {"gen_length": C.POEM_GEN_LENGTH, "block_length": C.POEM_BLOCK_LENGTH,
                    "sampler_steps": C.POEM_SAMPLER_STEPS}
            if name in poem:
                return poem[name]
        return defaults[name]

    resolved = ResolvedEval(
        out=canonical_out(cfg.out), model=model, dataset=canonical_dataset(dataset), direction=direction,
        weights="adapter" if adapter else "base", adapter=str(adapter) if adapter else None,
        run=str(Path(cfg.run).expanduser().resolve()) if cfg.run else None, seed=base.get("seed"),
        data_dir=pick("data_dir"), data_seed=pick("data_seed"), d2p_completions=pick("d2p_completions"),
        max_eval_examples=pick("max_eval_examples"), eval_batch_size=cfg.eval_batch_size,
        chat_template=pick("chat_template"), dtype=cfg.dtype,
        **{name: pick(name) for name in SAMPLER_FIELDS},
    )
    if resolved.eval_batch_size < 1:
        raise ConfigError(f"--eval-batch-size must be >= 1, got {resolved.eval_batch_size}")
    if resolved.max_eval_examples is not None and resolved.max_eval_examples < 1:
        raise ConfigError("--max-eval-examples must be >= 1")
    if resolved.dtype not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"unknown --dtype {resolved.dtype!r}; choose auto, bf16 or fp32")
    return resolved


def _identity(config: dict) -> dict:
    return {k: v for k, v in json.loads(json.dumps(config)).items() if k not in IDENTITY_EXEMPT}


def _check_out(rc: ResolvedEval) -> None:
    """--out must be new, empty, or this same evaluation (which a rerun replaces)."""
    out = Path(rc.out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file; use another --out")
    if not any(out.iterdir()):
        return
    try:
        old = json.loads((out / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        old = {}
    if old.get("kind") != "evaluation":
        raise ConfigError(f"--out {out} exists and is not an evaluate.py directory; use another --out")
    if _identity(old.get("config", {})) != _identity(dataclasses.asdict(rc)):
        a, b = _identity(old.get("config", {})), _identity(dataclasses.asdict(rc))
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise ConfigError(f"--out {out} holds a different evaluation ({', '.join(diff)}); use another --out")


def _adapter_settings(path: str | None) -> dict | None:
    if path is None:
        return None
    cfg = json.loads((Path(path) / "adapter_config.json").read_text())
    return {k: cfg.get(k) for k in ("r", "lora_alpha", "lora_dropout", "target_modules", "base_model_name_or_path")}


def _write_dir(out: Path, files: dict[str, object]) -> None:
    """Write every file into a temporary sibling, then move it to `out` in one rename."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, content in files.items():
            (tmp / name).write_text(content if isinstance(content, str) else json.dumps(content, indent=2,
                                                                                        ensure_ascii=False))
        if out.exists():  # the same evaluation, rerun (checked by _check_out)
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate(cfg: EvalRunConfig, progress: bool = True) -> dict:
    """Resolve, validate (nothing written on a bad input), evaluate both directions, write --out."""
    import torch

    from largescale_torch.data import build_task
    from largescale_torch.data.poems import CONTAINS_RULE, poem_scores
    from largescale_torch.data.registry import dataset_kind
    from largescale_torch.evaluation import MATCH_RULE, PREFIX_RULE, evaluate_directions
    from largescale_torch.modeling import load_adapter, load_base, pick_dtype, resolve_model
    from largescale_torch.training import accuracy_record, eval_config, provenance

    start = time.time()
    rc = resolve(cfg)
    eval_config(rc).validate()
    task = build_task(rc.dataset, rc.direction, data_dir=rc.data_dir, seed=rc.data_seed,
                      d2p_completions=rc.d2p_completions)
    _check_out(rc)
    spec = resolve_model(rc.model, rc.data_dir)
    dtype = pick_dtype(rc.dtype)
    ev_cfg = eval_config(rc, logits_shift=spec.logits_shift)
    forward = list(task.forward[: rc.max_eval_examples])
    reverse = list(task.reverse[: rc.max_eval_examples])
    model, tokenizer, ids = load_base(spec, dtype)
    if rc.adapter is not None:
        model = load_adapter(model, rc.adapter)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device).eval()
    ev = evaluate_directions(model, tokenizer, ids, forward, reverse, spec.is_mdm, ev_cfg, progress=progress)

    kind = dataset_kind(rc.dataset)
    resolved = {"model_path": spec.path, "family": spec.family, "is_mdm": spec.is_mdm,
                "dtype": str(dtype).replace("torch.", ""), "device": device, "dataset_kind": kind,
                "adapter_config": _adapter_settings(rc.adapter),
                "counts": {"forward": len(task.forward), "reverse": len(task.reverse)}}
    prov = provenance(spec, rc.data_dir, rc.dataset)
    config = dataclasses.asdict(rc)
    results = {
        "kind": "evaluation", "weights": rc.weights, "adapter": rc.adapter, "source_run": rc.run,
        **accuracy_record(ev),
        "final_epoch": None,
        "model": rc.model, "family": spec.family, "is_mdm": spec.is_mdm,
        "dataset": rc.dataset, "direction": rc.direction, "seed": rc.seed,
        "match_rule": MATCH_RULE, "secondary_rule": PREFIX_RULE,
        "protocol": {**dataclasses.asdict(ev_cfg), "decoding": ev["decoding"]},
        "config": config, "resolved": resolved, "provenance": prov,
        "wall_time_s": round(time.time() - start, 2),
    }
    if kind == "poems":
        results["poems"] = {"rule": CONTAINS_RULE,
                            "forward": poem_scores(ev["forward"]["rows"]),
                            "reverse": poem_scores(ev["reverse"]["rows"]),
                            "paper_table4": {k: {"forward": f, "reverse": r} for k, (f, r) in C.LLADA_TABLE4.items()}}
    predictions = "".join(json.dumps({"direction": d, **r}, ensure_ascii=False) + "\n"
                          for d in ("forward", "reverse") for r in ev[d]["rows"])
    _write_dir(Path(rc.out), {
        "config.json": {"kind": "evaluation", "config": config, "resolved": resolved, "provenance": prov},
        "dataset.json": task.to_dict(),
        "predictions.jsonl": predictions,
        "results.json": results,
    })
    return results


def summary(res: dict) -> str:
    """The one line evaluate.py prints (percent), with LLaDA's Table 4 beside poem results."""
    line = (f"{res['weights']} {res['model']}: forward exact {100 * res['forward']['final']:.1f}%, "
            f"reverse exact {100 * res['reverse']['final']:.1f}% (n={res['forward']['n']}/{res['reverse']['n']})")
    if "poems" in res:
        p = res["poems"]
        paper = ", ".join(f"{k} {f} / {r}" for k, (f, r) in C.LLADA_TABLE4.items())
        line += (f"; poems (LLaDA's contains rule) forward {100 * p['forward']['contains']:.1f}%, "
                 f"reverse {100 * p['reverse']['contains']:.1f}% [LLaDA paper, Table 4: {paper}]")
    return line + f" -> {res['config']['out']}/results.json"
