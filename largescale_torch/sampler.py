"""LLaDA's remasking sampler (Nie et al. 2025, `generate.py`), batched, with Fast-dLLM's fast options.

The response region starts fully masked and is split into blocks of `block_length`, decoded
left to right. Within a block, each of the `steps / n_blocks` steps predicts every masked
position at once and unmasks the k most confident ones (k from `num_transfer_tokens`, LLaDA's
`get_num_transfer_tokens`); an unmasked token is never re-masked. With temperature 0 the
prediction is the argmax. `remasking="random"` ranks the masked positions by a uniform random
number instead of the confidence (LLaDA's second rule).

The mask token itself is never predicted (its logit is set to -inf before the softmax, the
"zero masking probability" of masked-diffusion parameterisations): a trained LLaDA gives it
probability ~0, so this changes nothing there, but an untrained or tiny model whose argmax
happens to be [M] would otherwise write [M] into a position and leave it undecoded.

Two options of Fast-dLLM (Wu et al. 2025, arXiv:2505.22618), both off by default:

* `threshold=tau` (confidence-threshold parallel decoding): a step commits every masked position
  of the current block whose confidence (probability of its predicted token) is >= tau, and
  at least k_s = ceil(masked / remaining steps) of the most confident ones -- the exact
  sampler's count, which is one per step when steps == gen_length (Fast-dLLM's "at least the
  most confident one"). A block ends as soon as it has no masked position (early exit), so
  `steps` is an upper bound on the passes per block; with tau > 1 no position passes the
  threshold and the decoder is the exact sampler, token for token, for any `steps`.
* `prefix_cache=True` (Fast-dLLM's block-wise prefix cache): the first step of each block runs
  the whole sequence and keeps the keys/values of the prefix (the prompt and the finished
  blocks); the block's later steps feed only the current block and the masked suffix (later
  blocks, recomputed every step, not cached: Fast-dLLM's "DualCache" would cache them too).
  Under bidirectional attention the prefix's keys/values depend on the response, which
  changes within the block, so the cache is an approximation: the prefix keeps the view it
  had of the response at the block's start, refreshed at every block boundary.

`logits_shift=True` reads the prediction for response position i from the logits at position
i - 1 (Dream-family MDMs, which keep the autoregressive head alignment).
"""
from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F

from largescale_torch.batching import positions_from_mask
from largescale_torch.constants import ConfigError

REMASKING = ("low_confidence", "random")


def num_transfer_tokens(n_masked: int, steps: int) -> list[int]:
    """Tokens unmasked per step: n // steps each, the remainder spread over the first steps.

    Equivalently k_s = ceil(m_s / (steps - s)) with m_s the positions still masked before step s.
    """
    base, rem = divmod(n_masked, steps)
    return [base + (1 if i < rem else 0) for i in range(steps)]


def check_decoding(gen_length: int, block_length: int, steps: int, temperature: float = 0.0,
                   remasking: str = "low_confidence", threshold: float | None = None) -> None:
    """Raise `ConfigError` (a ValueError) with a one-line message on a bad decoding setting."""
    if gen_length < 1 or block_length < 1:
        raise ConfigError(f"gen_length {gen_length} and block_length {block_length} must be >= 1")
    if gen_length % block_length:
        raise ConfigError(f"gen_length {gen_length} is not a multiple of block_length {block_length}")
    n_blocks = gen_length // block_length
    if steps < 1 or steps % n_blocks:
        raise ConfigError(f"steps {steps} is not a positive multiple of the {n_blocks} blocks")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature}")
    if remasking not in REMASKING:
        raise ConfigError(f"unknown remasking {remasking!r}; choose {' or '.join(REMASKING)}")
    if threshold is not None:
        if not (threshold > 0 and math.isfinite(threshold)):
            raise ConfigError(f"threshold must be a finite number > 0, got {threshold}")
        if remasking != "low_confidence":
            raise ConfigError("threshold decoding ranks positions by confidence: it needs remasking "
                              "'low_confidence'")


def _gumbel_argmax(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64, device="cpu").to(logits.device)
    noisy = logits.double().exp() / (-torch.log(u)) ** temperature
    return noisy.argmax(-1)


def _cache_kwarg(lm) -> str:
    """transformers 5.25 renamed `past_key_values` to `cache` (the old name still works, with a warning)."""
    return "cache" if "cache" in inspect.signature(lm.model.forward).parameters else "past_key_values"


class _Forward:
    """Logits at chosen columns of the sequence; with `prefix_cache`, reuses the prefix's keys/values.

    `start` is the first column fed to the network (0 without a cache); `read_BxM` are absolute
    columns whose logits are returned. Counts its model calls in `self.calls`.
    """

    def __init__(self, lm, x_BxL, attn_BxL, pos_BxL, prefix_cache: bool):
        self.lm, self.x, self.attn, self.pos = lm, x_BxL, attn_BxL, pos_BxL
        self.has_head = hasattr(lm, "model") and hasattr(lm, "lm_head")
        if prefix_cache and not self.has_head:
            raise ValueError("prefix_cache needs a transformers LM (with .model and .lm_head)")
        self.use_cache, self.cache, self.kept, self.calls = prefix_cache, None, 0, 0

    def refresh(self, keep: int) -> None:
        """At a block boundary: the next call runs the whole sequence and keeps `keep` prefix columns."""
        self.cache, self.kept = None, keep

    def __call__(self, read_BxM: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        lm = self.lm
        if not self.has_head:
            logits_BxLxV = lm(input_ids=self.x, attention_mask=self.attn, position_ids=self.pos).logits
            return logits_BxLxV.gather(1, read_BxM[..., None].expand(-1, -1, logits_BxLxV.shape[-1]))
        if not self.use_cache:
            h_BxLxD = lm.model(input_ids=self.x, attention_mask=self.attn, position_ids=self.pos).last_hidden_state
            start = 0
        elif self.cache is None:  # first step of a block: full pass, then drop all but the prefix
            out = lm.model(input_ids=self.x, attention_mask=self.attn, position_ids=self.pos, use_cache=True)
            h_BxLxD, self.cache = out.last_hidden_state, out.cache if hasattr(out, "cache") else out.past_key_values
            self.cache.crop(self.kept - self.x.shape[1])  # negative: tokens to remove
            start = 0
        else:
            start = self.kept
            out = lm.model(input_ids=self.x[:, start:], attention_mask=self.attn, position_ids=self.pos[:, start:],
                           use_cache=True, **{_cache_kwarg(lm): self.cache})
            h_BxLxD = out.last_hidden_state
            self.cache.crop(start - self.x.shape[1])  # forget the block and suffix again
        cols_BxM = read_BxM - start
        h_BxMxD = h_BxLxD.gather(1, cols_BxM[..., None].expand(-1, -1, h_BxLxD.shape[-1]))
        return lm.lm_head(h_BxMxD)


@torch.inference_mode()
def llada_generate(model, prompt_BxP: torch.Tensor, prompt_attention_BxP: torch.Tensor, mask_id: int,
                   gen_length: int = 32, block_length: int = 32, steps: int = 32,
                   temperature: float = 0.0, generator: torch.Generator | None = None,
                   trace: list | None = None, remasking: str = "low_confidence", threshold: float | None = None,
                   prefix_cache: bool = False, logits_shift: bool = False, stats: dict | None = None
                   ) -> torch.Tensor:
    """Return the `gen_length` generated ids per row (B x gen_length).

    Rows are left-padded prompts; padding is masked out of attention, so each row's result
    equals its one-at-a-time result. If `trace` is a list, the response after every step
    is appended to it (for tests). If `stats` is a dict, it receives `forward_passes` (model
    calls for the batch) and `row_forward_passes` (per row, the calls made while the row still
    had a masked position in the current block: what it needs when decoded alone).

    Per step the work is one forward pass, the LM head and a softmax at the still-masked
    positions only, and an argmax only at the k positions that are committed: with
    temperature 0 the confidence of the argmax token is the largest probability, so
    `softmax.amax` ranks the positions exactly as `softmax[argmax]` does. The masked
    columns are tracked as a sorted index tensor; in the exact sampler every row has the same
    number of them, so no step synchronises with the host. In threshold mode rows commit
    different numbers: finished slots hold a sentinel (sorted last), read from a harmless
    column and written to a scratch column, and one host sync per step sizes the tensors.
    """
    check_decoding(gen_length, block_length, steps, temperature, remasking, threshold)
    n_blocks = gen_length // block_length
    B, P = prompt_BxP.shape
    if logits_shift and P < 1:
        raise ValueError("logits_shift needs a prompt of at least one token")
    device = prompt_BxP.device
    x = torch.cat([prompt_BxP, torch.full((B, gen_length), mask_id, dtype=torch.long, device=device)], 1)
    attn = torch.cat([prompt_attention_BxP, torch.ones((B, gen_length), dtype=prompt_attention_BxP.dtype,
                                                       device=device)], 1)
    pos = positions_from_mask(attn)
    resp = x[:, P:]  # a view: writes go into x
    steps_per_block = steps // n_blocks
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    forward = _Forward(lm, x, attn, pos, prefix_cache)
    shift = 1 if logits_shift else 0
    done = torch.iinfo(torch.long).max  # sorts after every column index
    row_passes_B = torch.zeros(B, dtype=torch.long, device=device)
    for b in range(n_blocks):
        # At the start of a block all of its columns are masked; they stay sorted ascending.
        first = b * block_length
        idx_BxM = torch.arange(first, first + block_length, device=device).expand(B, -1)
        # The prefix keeps P + first columns; with the shift, the last one is read, so it is recomputed.
        forward.refresh(P + first - shift)
        schedule = num_transfer_tokens(block_length, steps_per_block)
        for s, k in enumerate(schedule):
            M = idx_BxM.shape[1]
            if threshold is not None and M == 0:
                break  # early exit: the block is complete
            if threshold is not None:
                left_B = (idx_BxM != done).sum(1)
                k_min_B = (left_B + (steps_per_block - s) - 1) // (steps_per_block - s)  # ceil
                k = 1  # sized after the forward pass
            if k > 0 and M:
                live_BxM = idx_BxM != done
                read_BxM = P + torch.where(live_BxM, idx_BxM, first) - shift
                logits_BxMxV = forward(read_BxM).float()
                row_passes_B += live_BxM.any(1)
                logits_BxMxV[..., mask_id] = -torch.inf
                probs_BxMxV = F.softmax(logits_BxMxV, dim=-1)
                x0_BxM = None
                if remasking == "random":
                    conf_BxM = torch.rand((B, M), generator=generator, device="cpu").to(device)
                    if temperature != 0:
                        x0_BxM = _gumbel_argmax(logits_BxMxV, temperature, generator)
                elif temperature == 0:
                    conf_BxM = probs_BxMxV.amax(-1)
                else:
                    x0_BxM = _gumbel_argmax(logits_BxMxV, temperature, generator)
                    conf_BxM = probs_BxMxV.gather(-1, x0_BxM[..., None])[..., 0]
                if threshold is not None:
                    conf_BxM = conf_BxM.masked_fill(~live_BxM, -torch.inf)
                    k_B = torch.maximum(k_min_B, (conf_BxM >= threshold).sum(1))
                    k = int(k_B.max())
                top_BxK = conf_BxM.topk(k, dim=-1).indices
                if x0_BxM is None:
                    chosen_BxKxV = logits_BxMxV.gather(1, top_BxK[..., None].expand(-1, -1, logits_BxMxV.shape[-1]))
                    x0_BxK = chosen_BxKxV.argmax(-1)
                else:
                    x0_BxK = x0_BxM.gather(1, top_BxK)
                cols_BxK = idx_BxM.gather(1, top_BxK)
                if threshold is None:
                    resp.scatter_(1, cols_BxK, x0_BxK)  # masked slots only: never re-masks
                    idx_BxM = idx_BxM.scatter(1, top_BxK, done).sort(dim=1).values[:, : M - k]
                else:
                    commit_BxK = torch.arange(k, device=device) < k_B[:, None]
                    scratch_BxG1 = F.pad(resp, (0, 1), value=mask_id)  # column gen_length takes the rest
                    scratch_BxG1.scatter_(1, torch.where(commit_BxK, cols_BxK, gen_length), x0_BxK)
                    resp.copy_(scratch_BxG1[:, :gen_length])
                    commit_BxM = torch.zeros_like(live_BxM).scatter_(1, top_BxK, commit_BxK)
                    idx_BxM = torch.where(commit_BxM, done, idx_BxM).sort(dim=1).values
                    idx_BxM = idx_BxM[:, : int((idx_BxM != done).sum(1).max())]
            if trace is not None:
                trace.append(resp.clone())
    if stats is not None:
        stats["forward_passes"] = stats.get("forward_passes", 0) + forward.calls
        stats["row_forward_passes"] = stats.get("row_forward_passes", []) + row_passes_B.tolist()
    return resp
