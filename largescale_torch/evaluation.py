"""Exact-match evaluation in both directions (Section 3, Appendix D)."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from tqdm.auto import tqdm

from largescale_torch.batching import encode
from largescale_torch.constants import (
    BLOCK_LENGTH,
    GEN_LENGTH,
    MAX_NEW_TOKENS,
    SAMPLER_STEPS,
    TEMPERATURE,
    ConfigError,
)
from largescale_torch.data import Example
from largescale_torch.generation import arm_generate, mdm_generate
from largescale_torch.sampler import check_decoding

_TRAILING = " \t\n.!?\"'"
MATCH_RULE = (
    "exact match after normalisation: lowercase, collapse whitespace, strip surrounding "
    "whitespace, then strip a trailing run of . ! ? \" ' characters; a prediction counts if it "
    "equals any accepted answer (either-parent rule). Generation is cut at the first EOS/EOT."
)
PREFIX_RULE = "secondary: normalised prediction starts with a normalised accepted answer at a word boundary"


@dataclass(frozen=True)
class EvalConfig:
    """Decoding and batching of the evaluation. The defaults are the paper's (Appendix D, LLaDA's sampler).

    MDM options (see `sampler.llada_generate`): `remasking` is LLaDA's rule ("low_confidence"
    or "random"); `threshold` None is the exact sampler, a number tau > 0 Fast-dLLM's
    confidence-threshold parallel decoding (`steps` then bounds the passes per block);
    `prefix_cache` reuses the prefix's keys/values within a block (an approximation under
    bidirectional attention); `logits_shift` reads position i's prediction at i - 1 (Dream).
    """

    max_new_tokens: int = MAX_NEW_TOKENS
    gen_length: int = GEN_LENGTH
    block_length: int = BLOCK_LENGTH
    steps: int = SAMPLER_STEPS
    temperature: float = TEMPERATURE
    batch_size: int = 32
    chat_template: bool = False  # prompts inside the model's chat template (training's setting)
    remasking: str = "low_confidence"
    threshold: float | None = None
    prefix_cache: bool = False
    logits_shift: bool = False

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message on a bad value."""
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_decoding(self.gen_length, self.block_length, self.steps, self.temperature, self.remasking,
                       self.threshold)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def decoding(self) -> dict:
        """The settings that decide the MDM's answers (recorded with every evaluation)."""
        mode = "exact" if self.threshold is None else "threshold"
        return {"sampler": f"llada_{self.remasking}", "mode": mode, **self.sampler_kwargs()}

    def sampler_kwargs(self) -> dict:
        return {k: getattr(self, k) for k in ("gen_length", "block_length", "steps", "temperature", "remasking",
                                              "threshold", "prefix_cache", "logits_shift")}


def normalise(text: str) -> str:
    """Lowercase, collapse and strip whitespace, drop trailing sentence punctuation and quotes."""
    return re.sub(r"\s+", " ", text.lower()).strip().rstrip(_TRAILING)


def exact_match(prediction: str, accepted: tuple[str, ...]) -> bool:
    p = normalise(prediction)
    return any(p == normalise(a) for a in accepted)


def prefix_match(prediction: str, accepted: tuple[str, ...]) -> bool:
    p = normalise(prediction)
    for a in map(normalise, accepted):
        if p == a or (p.startswith(a) and not p[len(a)].isalnum()):
            return True
    return False


def predict(model, tokenizer, ids, examples: list[Example], is_mdm: bool, cfg: EvalConfig,
            progress: bool = True, desc: str = "eval", stats: dict | None = None) -> list[str]:
    """Decoded answers, in the order of `examples`; queries batched by prompt length.

    `stats` (optional dict) accumulates the forward passes (see `generation.mdm_generate`).
    """
    prompts = [list(encode(tokenizer, e.prompt, e.target, chat=cfg.chat_template).prompt) for e in examples]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    starts = range(0, len(order), cfg.batch_size)
    for s in tqdm(starts, desc=desc, disable=not progress, leave=False):
        chunk = order[s: s + cfg.batch_size]
        batch = [prompts[i] for i in chunk]
        if is_mdm:
            gen = mdm_generate(model, batch, ids, stats=stats, **cfg.sampler_kwargs())
        else:
            gen = arm_generate(model, batch, ids, cfg.max_new_tokens, stats=stats)
        for i, g in zip(chunk, gen):
            out[i] = tokenizer.decode(g, skip_special_tokens=True)
    return out


def score(examples: list[Example], predictions: list[str]) -> dict:
    exact = [exact_match(p, e.accepted) for e, p in zip(examples, predictions)]
    prefix = [prefix_match(p, e.accepted) for e, p in zip(examples, predictions)]
    n = max(len(examples), 1)
    return {"exact": sum(exact) / n, "prefix": sum(prefix) / n, "n": len(examples),
            "rows": [{"prompt": e.prompt, "target": e.target, "accepted": list(e.accepted), "prediction": p,
                      "exact": x, "prefix": y} for e, p, x, y in zip(examples, predictions, exact, prefix)]}


def evaluate_directions(model, tokenizer, ids, forward: list[Example], reverse: list[Example], is_mdm: bool,
                        cfg: EvalConfig, accelerator=None, progress: bool = True) -> dict:
    """Forward and reverse accuracy; under data parallelism each process decodes a shard.

    Per direction also `forward_passes_per_query`: the mean over queries of the model calls a
    query needs when decoded alone (MDM: sampler steps that ran while its block still had a
    masked position; ARM: generated tokens including the stop token, one cached forward pass
    each), and `forward_passes` (model calls made for the batches, summed over processes).
    `decoding` records the settings (`EvalConfig.decoding`).
    """
    cfg.validate()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    result = {}
    for name, examples in (("forward", forward), ("reverse", reverse)):
        mine = list(range(rank, len(examples), world))
        stats: dict = {}
        preds = predict(model, tokenizer, ids, [examples[i] for i in mine], is_mdm, cfg, progress, desc=name,
                        stats=stats)
        pairs = list(zip(mine, preds))
        counts = [(sum(stats.get("row_forward_passes", [])), len(stats.get("row_forward_passes", [])),
                   stats.get("forward_passes", 0))]
        if world > 1:
            from accelerate.utils import gather_object

            pairs = gather_object(pairs)
            counts = gather_object(counts)
        full = [""] * len(examples)
        for i, p in pairs:
            full[i] = p
        result[name] = score(examples, full)
        row_sum, n_rows = sum(c[0] for c in counts), sum(c[1] for c in counts)
        result[name]["forward_passes_per_query"] = row_sum / n_rows if n_rows else None
        result[name]["forward_passes"] = sum(c[2] for c in counts)
    result["decoding"] = cfg.decoding() if is_mdm else {"sampler": "greedy", "max_new_tokens": cfg.max_new_tokens}
    return result
