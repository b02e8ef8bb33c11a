"""Training objectives: L_MDM (masked diffusion) and next-token cross-entropy (ARM).

Both take `logits_fn(x_BxL) -> logits (B, L, N_TARGETS)` so that the loss is independent of
the model; the MDM and the ARM share the network and differ only in mask (model) and loss.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from toy_jax import vocab


def sample_t(key, batch: int, t_eps: float):
    """t = t_eps + (1 - t_eps) u, u ~ U[0, 1): keeps the 1/t weight at most 1/t_eps (RADD's
    sampling_eps = 1e-3 guard against t -> 0)."""
    return t_eps + (1.0 - t_eps) * jax.random.uniform(key, (batch,))


def sample_t_stratified(key, batch: int, t_eps: float):
    """RADD's low-discrepancy (`vdm`) sampler: one u0 ~ U[0, 1) per batch and
    t_b = t_eps + (1 - t_eps) ((u0 + b / B) mod 1), b = 0..B-1: the B times are evenly spread
    over [t_eps, 1), each still marginally uniform (lower-variance loss estimate)."""
    u0 = jax.random.uniform(key, ())
    u_B = jnp.mod(u0 + jnp.arange(batch, dtype=jnp.float32) / batch, 1.0)
    return t_eps + (1.0 - t_eps) * u_B


T_SAMPLERS = {"iid": sample_t, "stratified": sample_t_stratified}


def mask_tokens(key, x_BxL, t_B):
    """x_t: each token independently replaced by [M] with probability t (forward process)."""
    masked_BxL = jax.random.uniform(key, x_BxL.shape) < t_B[:, None]
    return jnp.where(masked_BxL, vocab.MASK, x_BxL), masked_BxL


def token_nll(logits_BxLxT, x_BxL):
    """-log p_theta(x_i | .) per position, (B, L)."""
    logp = jax.nn.log_softmax(logits_BxLxT, axis=-1)
    return -jnp.take_along_axis(logp, x_BxL[..., None], axis=-1)[..., 0]


def mdm_loss_from_masks(logits_BxLxT, x_BxL, masked_BxL, t_B):
    """L_MDM for given masks (Section 2, the MDM objective; RADD's loss):

        L = mean_b [ (1/t_b) * sum_i 1[x_t,b,i = M] * (-log p_theta(x_0,b,i | x_t,b)) ].

    Normalisation: summed over positions and averaged over sequences (as in RADD), so it is
    an upper bound on the per-sequence negative log-likelihood, not a per-token average.
    """
    nll_BxL = token_nll(logits_BxLxT, x_BxL)
    per_seq_B = jnp.sum(jnp.where(masked_BxL, nll_BxL, 0.0), axis=-1) / t_B
    return per_seq_B.mean()


def mdm_loss(logits_fn, key, x_BxL, t_eps: float, t_sampler: str = "iid"):
    """Sample t (`T_SAMPLERS[t_sampler]`) and masks, run the model on x_t, return L_MDM (see
    `mdm_loss_from_masks`)."""
    k_t, k_m = jax.random.split(key)
    t_B = T_SAMPLERS[t_sampler](k_t, x_BxL.shape[0], t_eps)
    x_t, masked = mask_tokens(k_m, x_BxL, t_B)
    return mdm_loss_from_masks(logits_fn(x_t), x_BxL, masked, t_B)


def arm_loss_from_logits(logits_BxLxT, x_BxL):
    """Next-token cross-entropy: mean over b and i = 1..L-1 of -log p(x_i | x_<i).

    The logits at position i-1 predict x_i; there is no BOS token, so x_0 is not predicted
    (every evaluation target sits at position >= 1). Mean per token, as in GPT-2 training.
    """
    return token_nll(logits_BxLxT[:, :-1], x_BxL[:, 1:]).mean()


def arm_loss(logits_fn, key, x_BxL, t_eps: float = 0.0, t_sampler: str = "iid"):
    """ARM objective on clean sequences (`key`, `t_eps`, `t_sampler` unused; same signature as
    mdm_loss)."""
    del key, t_eps, t_sampler
    return arm_loss_from_logits(logits_fn(x_BxL), x_BxL)


def lambda_dce_loss(logits_fn, key, x_BxL, t_eps: float = 0.0, t_sampler: str = "iid"):
    """RADD's lambda-DCE form of L_MDM (`t_eps`, `t_sampler` unused): the number of masked
    tokens k_b ~ U{1, ..., L}, the k_b masked positions uniform without replacement, and

        L = mean_b [ (L / k_b) * sum_i 1[x_t,b,i = M] * (-log p_theta(x_0,b,i | x_t,b)) ].

    The same expectation as the t-DCE form (`mdm_loss`; L/k plays the role of 1/t), with
    another variance: the mask count is uniform rather than binomial given t."""
    del t_eps, t_sampler
    B, L = x_BxL.shape
    k_n, k_pos = jax.random.split(key)
    n_B = jax.random.randint(k_n, (B,), 1, L + 1)
    rank_BxL = jnp.argsort(jnp.argsort(jax.random.uniform(k_pos, (B, L)), -1), -1)
    masked_BxL = rank_BxL < n_B[:, None]
    nll_BxL = token_nll(logits_fn(jnp.where(masked_BxL, vocab.MASK, x_BxL)), x_BxL)
    return (jnp.sum(jnp.where(masked_BxL, nll_BxL, 0.0), -1) * (L / n_B)).mean()


LOSSES = {"mdm": mdm_loss, "arm": arm_loss}
MDM_LOSSES = {"t_dce": mdm_loss, "lambda_dce": lambda_dce_loss}


def loss_for(objective: str, loss: str = "t_dce"):
    """The training loss of an objective; `loss` picks the MDM's estimator (the ARM has one)."""
    return MDM_LOSSES[loss] if objective == "mdm" else LOSSES[objective]


def prediction_offset(objective: str) -> int:
    """Where the logits for position i live: i itself (MDM, at the [M]) or i - 1 (ARM)."""
    return {"mdm": 0, "arm": 1}[objective]
