"""lm-evaluation-harness model class for the package's MDMs (LLaDA, Dream, with LoRA adapters).

The harness has no diffusion model of its own; LLaDA's and Dream's repositories each ship one
(LLaDA: `evaluation/eval_llada.py`, model "llada_dist"). This is the package's counterpart:

* `loglikelihood` is LLaDA's Monte-Carlo estimate of log p(answer | prompt) (`mc_loglikelihood`),
  with `is_greedy` from the package's sampler run one token per step (`greedy_reproduces`);
* `generate_until` decodes through the package's sampler (`mdm_generate`) and cuts the text at
  the request's `until` strings (`cut_at_until`);
* `loglikelihood_rolling` is not available (see the method).

Usage: `python -m largescale_torch.harness --model reversal_mdm --model_args pretrained=... ...`
takes every flag of the `lm_eval` CLI; it registers the model first, since the harness finds
models only in its registry and loads no plugins. From Python: `register()`, then
`lm_eval.simple_evaluate(model="reversal_mdm", ...)`. lm_eval is imported only by `register()`
and `main()`, so the estimator and the class import without it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from largescale_torch.constants import BLOCK_LENGTH, GEN_LENGTH, SAMPLER_STEPS, TEMPERATURE, ConfigError
from largescale_torch.generation import mdm_generate
from largescale_torch.modeling import load_adapter, load_base, pick_dtype, resolve_model
from largescale_torch.sampler import check_decoding, llada_generate

MODEL_NAME = "reversal_mdm"
MC_NUM = 128  # LLaDA's eval_llada.py default for mc_num


# --- pure functions -------------------------------------------------------------------------

def mask_counts(n_answer: int, n_rows: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Number of masked answer tokens per row, l_j in {1..A} (A = n_answer).

    l_j = ((round(k + j A / n) - 1) mod A) + 1 with one k ~ U{1..A} per batch: each row's l is
    marginally uniform on {1..A} (a shift of a uniform k, modulo A) and the rows of a batch
    spread evenly over the range, which lowers the variance of the batch mean (LLaDA's
    `eval_llada.py`, `_forward_process`).
    """
    if n_answer < 1 or n_rows < 1:
        raise ValueError(f"need at least one answer token and one row, got {n_answer} and {n_rows}")
    k = int(torch.randint(1, n_answer + 1, (1,), generator=generator))
    offsets = torch.arange(n_rows, dtype=torch.float64) * (n_answer / n_rows)
    return (torch.round(k + offsets).long() - 1) % n_answer + 1


def random_masks(counts_B: torch.Tensor, n_answer: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """B x A booleans: row j masks `counts_B[j]` answer positions drawn without replacement."""
    rank_BxA = torch.rand(len(counts_B), n_answer, generator=generator).argsort(1).argsort(1)
    return rank_BxA < counts_B[:, None]


@torch.inference_mode()
def mc_loglikelihood(answer_logits: Callable[[torch.Tensor], torch.Tensor], prompt: Sequence[int],
                     answer: Sequence[int], mask_id: int, mc_num: int = MC_NUM, batch_size: int = 32,
                     generator: torch.Generator | None = None) -> float:
    """Monte-Carlo estimate of the MDM's bound on log p(answer | prompt).

        log p(r0 | p0) >= E_{l ~ U{1..A}} E_{r_l} [ (A / l) sum_{i: r_l^i = [M]} log p(r0^i | p0, r_l) ]

    where r_l masks l of the A answer tokens, drawn uniformly without replacement, and the
    prompt is never masked: the lower-variance form of the likelihood bound that LLaDA uses
    for conditional likelihoods (Nie et al. 2025, Section 2.4; `eval_llada.py`,
    `get_loglikelihood`). The mean of `mc_num` samples, drawn `batch_size` at a time.

    `answer_logits(x_BxL)` returns B x A x V logits at the answer positions (the last A
    columns). [M] gets probability 0 (its logit is dropped), as in the package's sampler.
    When the model's predictions do not depend on the context the bound is tight and the
    estimate's expectation is the exact sum of the per-position log-probabilities.
    """
    A, P = len(answer), len(prompt)
    if A == 0:
        raise ValueError("the continuation is empty: nothing to score")
    if mc_num < 1 or batch_size < 1:
        raise ValueError(f"mc_num and batch_size must be positive, got {mc_num} and {batch_size}")
    seq_L = torch.tensor([*prompt, *answer], dtype=torch.long)
    answer_A = seq_L[P:]
    total, done = 0.0, 0
    while done < mc_num:
        B = min(batch_size, mc_num - done)
        counts_B = mask_counts(A, B, generator)
        masked_BxA = random_masks(counts_B, A, generator)
        x_BxL = seq_L.expand(B, -1).clone()
        x_BxL[:, P:][masked_BxA] = mask_id
        logits_BxAxV = answer_logits(x_BxL).float()
        # out of place: the logits may be a view the caller still holds
        logits_BxAxV = logits_BxAxV.masked_fill(torch.arange(logits_BxAxV.shape[-1], device=logits_BxAxV.device)
                                                == mask_id, -torch.inf)
        logp_BxA = F.log_softmax(logits_BxAxV, -1).gather(-1, answer_A.to(logits_BxAxV.device).expand(B, -1)[..., None])[..., 0]
        logp_BxA = logp_BxA.cpu().double()
        per_row_B = (logp_BxA * masked_BxA).sum(-1) * (A / counts_B.double())
        total += float(per_row_B.sum())
        done += B
    estimate = total / mc_num
    if not math.isfinite(estimate):
        raise FloatingPointError(f"log-likelihood estimate is {estimate}")
    return estimate


def cut_at_until(text: str, until: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop string (the harness's `until`)."""
    cut = len(text)
    for stop in until:
        if stop:
            i = text.find(stop)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


def split_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace onto the continuation.

    BPE tokenizers attach a space to the following word, so "Q: ... A: " + "Paris" tokenises
    better as "Q: ... A:" + " Paris" (LLaDA's and the harness's `_encode_pair`).
    """
    n = len(context) - len(context.rstrip())
    return (context[:-n], context[-n:] + continuation) if n else (context, continuation)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) that concatenate to the ids of the whole text.

    If tokenising the whole text merges tokens across the boundary, the continuation is
    tokenised on its own instead, so the context's ids are never altered.
    """
    context, continuation = split_trailing_space(context, continuation)
    ctx = tokenizer(context).input_ids if context else []
    whole = tokenizer(context + continuation).input_ids
    if whole[: len(ctx)] == ctx:
        return ctx, whole[len(ctx):]
    return ctx, tokenizer(continuation, add_special_tokens=False).input_ids


def _as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"expected true or false, got {value!r}")


def _pick_device(requested: str | None) -> torch.device:
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(requested).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {requested!r} requested but CUDA is not available; pass --device cpu")
    return torch.device(requested)


# --- the model class ------------------------------------------------------------------------

class MDMHarness:
    """The harness's LM interface for an MDM; `register()` adds the `lm_eval` base class.

    Arguments come from `--model_args` (strings or numbers) and from the harness itself
    (`batch_size`, `max_batch_size`, `device`).
    """

    def __init__(self, pretrained: str = "tiny-llada", adapter: str | None = None, batch_size: int | str = 1,
                 mc_num: int = MC_NUM, gen_length: int = GEN_LENGTH, steps: int = SAMPLER_STEPS,
                 block_length: int = BLOCK_LENGTH, temperature: float = TEMPERATURE,
                 remasking: str = "low_confidence", threshold: float | None = None, prefix_cache: bool = False,
                 check_greedy: bool = True, device: str | None = None, dtype: str = "auto", seed: int = 0,
                 max_batch_size: int | None = None, **unknown):
        super().__init__()  # lm_eval's LM.__init__ when registered (rank, world size, cache hook)
        if unknown:
            raise ConfigError(f"unknown model_args for {MODEL_NAME}: {', '.join(sorted(unknown))}")
        if str(batch_size).startswith("auto"):
            raise ConfigError("batch_size 'auto' is not supported; pass an integer")
        del max_batch_size  # only used by the harness's 'auto' batch size
        self.batch_size, self.mc_num, self.seed = int(batch_size), int(mc_num), int(seed)
        self.gen_length, self.steps, self.block_length = int(gen_length), int(steps), int(block_length)
        self.temperature, self.check_greedy = float(temperature), _as_bool(check_greedy)
        self.decoding = {"remasking": str(remasking), "threshold": None if threshold is None else float(threshold),
                         "prefix_cache": _as_bool(prefix_cache)}
        if self.batch_size < 1 or self.mc_num < 1:
            raise ConfigError(f"batch_size and mc_num must be positive, got {self.batch_size} and {self.mc_num}")
        check_decoding(self.gen_length, self.block_length, self.steps, self.temperature,
                       self.decoding["remasking"], self.decoding["threshold"])
        spec = resolve_model(str(pretrained))
        if not spec.is_mdm:
            raise ConfigError(f"{MODEL_NAME} evaluates MDMs; {pretrained!r} is an ARM ({spec.family}): "
                              "use the harness's own 'hf' model")
        self._device = _pick_device(device)
        model, self.tokenizer, self.ids = load_base(spec, pick_dtype(dtype))
        if adapter:
            model = load_adapter(model, adapter)
        self.model = model.to(self._device).eval()
        self.spec = spec
        self.name = f"{spec.path}+{adapter}" if adapter else spec.path
        self.generator = torch.Generator().manual_seed(self.seed)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def tokenizer_name(self) -> str:
        return self.name.replace("/", "__")

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt,
                                                  tokenize=False)

    def _answer_logits(self, n_answer: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """x_BxL -> B x A x V logits predicting the last A tokens (unpadded rows).

        The LM head runs at those A columns only (the vocabulary of an 8B MDM is ~126k wide);
        Dream's prediction for token i is read at i - 1 (`ModelSpec.logits_shift`).
        """
        lm = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        shift = 1 if self.spec.logits_shift else 0

        def logits(x_BxL: torch.Tensor) -> torch.Tensor:
            x_BxL = x_BxL.to(self._device)
            L = x_BxL.shape[1]
            if L - n_answer - shift < 0:
                raise ValueError("a shifted-logits MDM needs a context of at least one token")
            with torch.inference_mode():
                if hasattr(lm, "model") and hasattr(lm, "lm_head"):
                    h_BxLxD = lm.model(input_ids=x_BxL).last_hidden_state
                    return lm.lm_head(h_BxLxD[:, L - n_answer - shift: L - shift])
                return lm(input_ids=x_BxL).logits[:, L - n_answer - shift: L - shift]

        return logits

    def greedy_reproduces(self, prompt: list[int], answer: list[int]) -> bool:
        """Does greedy decoding of A = len(answer) masked tokens give the answer?

        The package's sampler with one block, A steps and temperature 0 unmasks the single
        most confident position per step with its argmax: LLaDA's `suffix_greedy_prediction`.
        """
        x_1xP = torch.tensor([prompt], dtype=torch.long, device=self._device)
        out_1xA = llada_generate(self.model, x_1xP, torch.ones_like(x_1xP), self.ids.mask, gen_length=len(answer),
                                 block_length=len(answer), steps=len(answer), temperature=0.0,
                                 logits_shift=self.spec.logits_shift)
        return out_1xA[0].tolist() == list(answer)

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        out = []
        for req in requests:
            context, continuation = req.args
            prompt, answer = encode_pair(self.tokenizer, context, continuation)
            ll = mc_loglikelihood(self._answer_logits(len(answer)), prompt, answer, self.ids.mask, self.mc_num,
                                  self.batch_size, self.generator)
            greedy = self.greedy_reproduces(prompt, answer) if self.check_greedy else False
            out.append((ll, greedy))
            self._cache("loglikelihood", (context, continuation), (ll, greedy))
        return out

    def loglikelihood_rolling(self, requests) -> list[float]:
        raise NotImplementedError(f"{MODEL_NAME}: an MDM has no left-to-right rolling likelihood (perplexity tasks)")

    def generate_until(self, requests) -> list[str]:
        """Decoded answers of `gen_length` tokens; gen_kwargs other than `until` are ignored.

        The sampler's settings are the constructor's (model_args), as in LLaDA's harness: a
        per-request `max_gen_toks` would change the block layout.
        """
        out = []
        for s in range(0, len(requests), self.batch_size):
            batch = requests[s: s + self.batch_size]
            prompts = [self.tokenizer(req.args[0]).input_ids for req in batch]
            ids = mdm_generate(self.model, prompts, self.ids, gen_length=self.gen_length,
                               block_length=self.block_length, steps=self.steps, temperature=self.temperature,
                               logits_shift=self.spec.logits_shift, **self.decoding)
            for req, row in zip(batch, ids):
                until = (req.args[1].get("until") if len(req.args) > 1 else None) or []
                text = cut_at_until(self.tokenizer.decode(row, skip_special_tokens=True),
                                    [until] if isinstance(until, str) else until)
                out.append(text)
                self._cache("generate_until", req.args, text)
        return out

    def _cache(self, method: str, args, result) -> None:
        hook = getattr(self, "cache_hook", None)  # set by lm_eval's LM.__init__
        if hook is not None:
            hook.add_partial(method, args, result)


# --- registration and CLI -------------------------------------------------------------------

_REGISTERED: type | None = None


def register() -> type:
    """Register `MDMHarness` with lm_eval under `MODEL_NAME`; returns the registered class."""
    global _REGISTERED
    if _REGISTERED is not None:
        return _REGISTERED
    try:
        import lm_eval.models  # noqa: F401  the built-in models stay listed next to ours
        from lm_eval.api.model import LM
        from lm_eval.api.registry import register_model
    except ImportError:
        raise ImportError('lm_eval is not installed: pip install -e ".[lm-eval]"') from None
    cls = type("ReversalMDMLM", (MDMHarness, LM), {"__module__": __name__, "__doc__": MDMHarness.__doc__})
    register_model(MODEL_NAME)(cls)
    _REGISTERED = cls
    return cls


def main() -> None:
    """The `lm_eval` command line with `reversal_mdm` registered."""
    register()
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
