"""Exact-match evaluation in both directions (Section 3, Appendix D)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from tqdm.auto import tqdm

from largescale_torch.batching import encode
from largescale_torch.constants import BLOCK_LENGTH, GEN_LENGTH, MAX_NEW_TOKENS, SAMPLER_STEPS, TEMPERATURE
from largescale_torch.data import Example

_TRAILING = " \t\n.!?\"'"
MATCH_RULE = (
    "exact match after normalisation: lowercase, collapse whitespace, strip surrounding "
    "whitespace, then strip a trailing run of . ! ? \" ' characters; a prediction counts if it "
    "equals any accepted answer (either-parent rule). Generation is cut at the first EOS/EOT."
)
PREFIX_RULE = "secondary: normalised prediction starts with a normalised accepted answer at a word boundary"


@dataclass(frozen=True)
class EvalConfig:
    max_new_tokens: int = MAX_NEW_TOKENS
    gen_length: int = GEN_LENGTH
    block_length: int = BLOCK_LENGTH
    steps: int = SAMPLER_STEPS
    temperature: float = TEMPERATURE
    batch_size: int = 32
    chat_template: bool = False  # prompts inside the model's chat template (training's setting)


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
            progress: bool = True, desc: str = "eval") -> list[str]:
    """Decoded answers, in the order of `examples`; queries batched by prompt length."""
    from largescale_torch.generation import arm_generate, mdm_generate

    prompts = [list(encode(tokenizer, e.prompt, e.target, chat=cfg.chat_template).prompt) for e in examples]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    starts = range(0, len(order), cfg.batch_size)
    for s in tqdm(starts, desc=desc, disable=not progress, leave=False):
        chunk = order[s: s + cfg.batch_size]
        batch = [prompts[i] for i in chunk]
        if is_mdm:
            gen = mdm_generate(model, batch, ids, cfg.gen_length, cfg.block_length, cfg.steps, cfg.temperature)
        else:
            gen = arm_generate(model, batch, ids, cfg.max_new_tokens)
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
    """Forward and reverse accuracy; under data parallelism each process decodes a shard."""
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    result = {}
    for name, examples in (("forward", forward), ("reverse", reverse)):
        mine = list(range(rank, len(examples), world))
        preds = predict(model, tokenizer, ids, [examples[i] for i in mine], is_mdm, cfg, progress, desc=name)
        pairs = list(zip(mine, preds))
        if world > 1:
            from accelerate.utils import gather_object

            pairs = gather_object(pairs)
        full = [""] * len(examples)
        for i, p in pairs:
            full[i] = p
        result[name] = score(examples, full)
    return result
