"""Stage 1: one random initialisation per seed, pretrained from scratch with each model's own objective.

The MDM is a LLaDA checkpoint (OLMo-style names, loaded by `llada.load_llada` into a bidirectional
Llama), the ARM the same initial weights as a causal `LlamaForCausalLM`; both then see the same
background corpus in the same order, packed as LLaDA packs its pretraining documents
("<BOS> sentence <EOS> <BOS> sentence <EOS> ..." cut into rows of `seq_len` tokens, no padding).
Objectives (Section 2.1): next-token CE on every position for the ARM; LLaDA's pretraining loss
for the MDM (every token masked with probability p_mask = (1 - eps) t + eps, CE / p_mask,
`losses.mdm_pretrain_loss`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from largescale_torch.constants import MASK_EPS
from largescale_torch.llada import llama_config_from_llada, save_llada_checkpoint
from largescale_torch.losses import arm_loss, mdm_pretrain_corrupt, mdm_pretrain_loss
from largescale_torch.presets import llada_config_dict


def llada_config(hidden: int, layers: int, heads: int, ffn: int, rope_theta: float, tokenizer) -> dict:
    return {**llada_config_dict(tokenizer), "d_model": hidden, "n_heads": heads, "n_kv_heads": heads,
            "n_layers": layers, "mlp_hidden_size": ffn, "rope_theta": rope_theta}


def init_models(llada_cfg: dict, seed: int):
    """(MDM, ARM): two LlamaForCausalLM with one set of random weights, bidirectional / causal."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    mdm = LlamaForCausalLM(llama_config_from_llada(llada_cfg))
    arm_config = llama_config_from_llada(llada_cfg)
    arm_config.is_causal = True
    arm = LlamaForCausalLM(arm_config)
    arm.load_state_dict(mdm.state_dict())
    return mdm, arm


def save_model(model, is_mdm: bool, llada_cfg: dict, tokenizer, dest: Path) -> Path:
    """A directory `modeling.resolve_model` reads: a LLaDA checkpoint for the MDM, a Llama one for the ARM."""
    if is_mdm:
        save_llada_checkpoint(model.state_dict(), llada_cfg, dest)
    else:
        model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def pack(tokenizer, sentences: list[str], seq_len: int) -> torch.Tensor:
    """Rows_NxL of "<BOS> s <EOS>" concatenated and cut every `seq_len` tokens (the remainder dropped)."""
    stream = []
    for s in sentences:
        stream += tokenizer(s).input_ids + [tokenizer.eos_token_id]
    n = len(stream) // seq_len
    if n == 0:
        raise ValueError(f"background corpus of {len(stream)} tokens is shorter than one row of {seq_len}")
    return torch.tensor(stream[: n * seq_len]).view(n, seq_len)


def pretrain(model, is_mdm: bool, rows_NxL: torch.Tensor, steps: int, batch_size: int, lr: float,
             weight_decay: float, seed: int, mask_id: int, warmup: int = 50) -> list[float]:
    """`steps` AdamW steps (linear warm-up, then constant) on the packed corpus; returns the loss per step."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    rng = np.random.default_rng([seed, 1])  # batch order: the same for MDM and ARM of a seed
    gen = torch.Generator().manual_seed(seed)
    order, losses = np.array([], dtype=int), []
    for _ in range(steps):
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(len(rows_NxL))])
        x_BxL, order = rows_NxL[order[:batch_size]], order[batch_size:]
        attn_BxL = torch.ones_like(x_BxL)
        if is_mdm:
            noisy, masked, p_mask = mdm_pretrain_corrupt(x_BxL, attn_BxL, mask_id, MASK_EPS, gen)
            loss = mdm_pretrain_loss(model(input_ids=noisy).logits, x_BxL, masked, p_mask, attn_BxL)
        else:
            loss = arm_loss(model(input_ids=x_BxL).logits, x_BxL)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite pretraining loss at step {len(losses)}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses
