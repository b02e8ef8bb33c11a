"""One-block pre-norm Transformer of the toy experiment (Section 4.3, Appendix E), from scratch.

    h0 = E[x] (+ P if pos='learned')
    h1 = h0 + Dropout(W_o Attn(LN1(h0)))          Attn with RoPE on q, k (pos='rope')
    h2 = h1 + Dropout(MLP(LN2(h1)))               MLP = Linear(d, 4d) -> GELU(tanh) -> Linear(4d, d)
    logits = W_head LN_f(h2) + b_head              over the N_TARGETS non-mask ids (or
                                                   `vocab_size` outputs, the first N_TARGETS
                                                   of which are the toy's symbols)

The MDM and the ARM are this same module; `ModelConfig.attention` ('full' | 'causal') is the
only architectural difference. Attention is written out so scores and weights can be returned:
`scores` is the raw q_i^T R(j - i) k_j (Appendix F.1), BEFORE the 1/sqrt(d_head) scale;
`weights` = softmax(scores / sqrt(d_head) + causal mask) over j.

RoPE (base 10000) uses the rotate-half pairing: coordinate a of a head is paired with
a + d_head/2 and rotated by p * theta_a, theta_a = base^(-2a/d_head) (theory.bounds.rope_thetas).

Initialisation `radd` follows RADD's model/transformer.py (the paper's MDM): LayerNorm weight
and bias both 1; no bias on the qkv and attention-output projections; torch-default
kaiming-uniform(a=sqrt 5) linear layers, i.e. U(+-1/sqrt(fan_in)) for weights and biases;
kaiming-uniform(a=sqrt 5) embeddings, i.e. U(+-1/sqrt(d)); a zero output layer (weight and
bias). `standard` is GPT-2's: N(0, 0.02) weights and embeddings, residual projections
N(0, 0.02/sqrt 2), zero biases, LayerNorm (1, 0). Only values differ, never the architecture.
`ModelConfig.embed_init` (radd | normal = N(0, 1), PyTorch's nn.Embedding default | gpt2) and
`ModelConfig.ln_bias` override the embeddings and the initial bias of all three LayerNorms.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.extend.random import threefry_2x32

from theory.bounds import rope_thetas
from toy_jax import vocab
from toy_jax.configs import ModelConfig

LN_EPS = 1e-5


class Attention(NamedTuple):
    """Per-head attention of a batch: scores are unscaled q^T R(j-i) k, weights are softmaxed."""

    scores_BxHxLxL: jax.Array
    weights_BxHxLxL: jax.Array


def _uniform(key, shape, bound):
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _normal(key, shape, std):
    return std * jax.random.normal(key, shape, jnp.float32)


def compute_dtype(cfg: ModelConfig):
    """The matmul dtype: bfloat16 under precision='bf16' (as RADD's bf16 autocast), else float32.
    Parameters, optimizer state, LayerNorm, softmax and the logits stay float32 either way."""
    return jnp.bfloat16 if cfg.precision == "bf16" else jnp.float32


def dense(x, w, dtype=jnp.float32):
    """x @ w with both operands in `dtype` (a no-op cast under float32)."""
    return jnp.matmul(x.astype(dtype), w.astype(dtype))


def layer_norm(x, scale, bias):
    """LN(x) = (x - mean) / sqrt(var + 1e-5) * scale + bias over the last axis (in float32)."""
    x = x.astype(jnp.float32)
    mu = x.mean(-1, keepdims=True)
    var = jnp.square(x - mu).mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + LN_EPS) * scale + bias


def rope_tables(L: int, d_head: int, base: float):
    """cos, sin of p * theta_a, shape (L, d_head/2) each (constants, float32)."""
    ang = np.arange(L, dtype=np.float64)[:, None] * rope_thetas(d_head, base)[None, :]
    return jnp.asarray(np.cos(ang), jnp.float32), jnp.asarray(np.sin(ang), jnp.float32)


def apply_rope(x_BxLxHxD, cos_LxD2, sin_LxD2):
    """Rotate each pair (a, a + D/2) at position p by p * theta_a (rotate-half RoPE)."""
    half = x_BxLxHxD.shape[-1] // 2
    x1, x2 = x_BxLxHxD[..., :half], x_BxLxHxD[..., half:]
    c, s = cos_LxD2[:, None, :], sin_LxD2[:, None, :]
    return jnp.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


class ToyTransformer(nnx.Module):
    """The toy MDM / ARM. Parameters are plain `nnx.Param`s (shapes in the attribute names' docs)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        d, f, V, T, L = cfg.d_model, cfg.d_model * cfg.mlp_ratio, vocab.VOCAB_SIZE, \
            cfg.n_outputs, cfg.seq_len
        k = iter(jax.random.split(rngs.params(), 16))
        emb = {"radd": lambda shape: _uniform(next(k), shape, 1.0 / math.sqrt(d)),
               "normal": lambda shape: _normal(next(k), shape, 1.0),
               "gpt2": lambda shape: _normal(next(k), shape, 0.02)}[cfg.embed_init_used]
        ones = jnp.ones((d,), jnp.float32)
        ln_bias = jnp.full((d,), cfg.ln_bias_used, jnp.float32)
        # embeddings (token and learned positions) and LayerNorms follow `embed_init_used` and
        # `ln_bias_used`: by default the values `init` names, drawn from the same keys
        self.embed = nnx.Param(emb((V, d)))
        self.pos_embed = nnx.Param(emb((L, d))) if cfg.pos == "learned" else None
        self.ln1_scale, self.ln1_bias = nnx.Param(ones), nnx.Param(ln_bias)
        self.ln2_scale, self.ln2_bias = nnx.Param(ones), nnx.Param(ln_bias)
        self.lnf_scale, self.lnf_bias = nnx.Param(ones), nnx.Param(ln_bias)
        if cfg.init == "radd":
            lin = lambda fan_in, shape: _uniform(next(k), shape, 1.0 / math.sqrt(fan_in))
            self.w_qkv = nnx.Param(lin(d, (d, 3 * d)))
            self.w_out = nnx.Param(lin(d, (d, d)))
            self.w_mlp1, self.b_mlp1 = nnx.Param(lin(d, (d, f))), nnx.Param(lin(d, (f,)))
            self.w_mlp2, self.b_mlp2 = nnx.Param(lin(f, (f, d))), nnx.Param(lin(f, (d,)))
            self.w_head = nnx.Param(jnp.zeros((d, T), jnp.float32))
            self.b_head = nnx.Param(jnp.zeros((T,), jnp.float32))
        else:  # GPT-2
            std, std_res = 0.02, 0.02 / math.sqrt(2.0)
            self.w_qkv = nnx.Param(_normal(next(k), (d, 3 * d), std))
            self.w_out = nnx.Param(_normal(next(k), (d, d), std_res))
            self.w_mlp1 = nnx.Param(_normal(next(k), (d, f), std))
            self.b_mlp1 = nnx.Param(jnp.zeros((f,), jnp.float32))
            self.w_mlp2 = nnx.Param(_normal(next(k), (f, d), std_res))
            self.b_mlp2 = nnx.Param(jnp.zeros((d,), jnp.float32))
            self.w_head = nnx.Param(_normal(next(k), (d, T), std))
            self.b_head = nnx.Param(jnp.zeros((T,), jnp.float32))

    # -- pieces (reused by the tracking probe so it computes exactly the same function) --
    def embed_tokens(self, x_BxL, positions_L=None):
        """h0 = E[x] (+ P[positions] for learned positions); positions default to 0..L-1."""
        h = self.embed[...][x_BxL]
        if self.pos_embed is not None:
            pos = jnp.arange(x_BxL.shape[-1]) if positions_L is None else positions_L
            h = h + self.pos_embed[...][pos]
        return h

    def qkv(self, h_BxLxd, positions_L=None):
        """q, k (RoPE-rotated when pos='rope'), v of LN1(h); each (B, L, H, d_head)."""
        cfg = self.cfg
        a = layer_norm(h_BxLxd, self.ln1_scale[...], self.ln1_bias[...])
        qkv = dense(a, self.w_qkv[...], compute_dtype(cfg))
        q, k, v = jnp.split(qkv.reshape(*qkv.shape[:-1], 3, cfg.n_heads, cfg.d_head), 3, axis=-3)
        q, k, v = q.squeeze(-3), k.squeeze(-3), v.squeeze(-3)
        if cfg.pos == "rope":
            cos, sin = rope_tables(cfg.seq_len, cfg.d_head, cfg.rope_base)
            if positions_L is not None:
                cos, sin = cos[positions_L], sin[positions_L]
            else:
                cos, sin = cos[: h_BxLxd.shape[-2]], sin[: h_BxLxd.shape[-2]]
            dt = q.dtype
            q, k = apply_rope(q, cos, sin).astype(dt), apply_rope(k, cos, sin).astype(dt)
        return q, k, v

    def mlp_and_head(self, h1_BxLxd, dropout_key=None):
        """logits = head(LN_f(h1 + Dropout(MLP(LN2(h1))))), shape (B, L, N_TARGETS)."""
        dt = compute_dtype(self.cfg)
        m = layer_norm(h1_BxLxd, self.ln2_scale[...], self.ln2_bias[...])
        m = jax.nn.gelu(dense(m, self.w_mlp1[...], dt) + self.b_mlp1[...].astype(dt),
                        approximate=True)
        m = dense(m, self.w_mlp2[...], dt) + self.b_mlp2[...].astype(dt)
        h2 = h1_BxLxd + _dropout(m, self.cfg.dropout, dropout_key)  # residual stream: float32
        h = layer_norm(h2, self.lnf_scale[...], self.lnf_bias[...])
        return dense(h, self.w_head[...], dt).astype(jnp.float32) + self.b_head[...]

    def __call__(self, x_BxL, *, dropout_key=None, return_attn: bool = False):
        """Logits (B, L, N_TARGETS); with return_attn also `Attention` (per head).

        Dropout is active only when `dropout_key` is given (training).
        """
        L = x_BxL.shape[-1]
        if L > self.cfg.seq_len:
            raise ValueError(f"sequence length {L} exceeds the model's seq_len {self.cfg.seq_len}")
        return self.block(self.embed_tokens(x_BxL), dropout_key=dropout_key,
                          return_attn=return_attn)

    def attention_weights(self, scores_xJ, query_pos):
        """weights = softmax(scores / sqrt(d_head) + causal mask) over the last (key) axis j.

        The one place attention weights are made: the full forward (`block`), the one-query
        forward (`logits_from_qkv`, `evaluate`'s cached generation) and `tracking`'s probes.
        `scores_xJ` (..., J) are the unscaled float32 q^T R(j - i) k over keys j = 0..J-1;
        `query_pos` broadcasts against them (an int, (B, 1, 1), (L, 1), ...): under causal
        attention key j is seen iff j <= the query's position.
        """
        logits = scores_xJ * (1.0 / math.sqrt(self.cfg.d_head))
        if self.cfg.attention == "causal":
            logits = jnp.where(jnp.arange(scores_xJ.shape[-1]) <= query_pos, logits, -jnp.inf)
        return jax.nn.softmax(logits, axis=-1)

    def attention_residual(self, h0_xd, o_xHxD, dropout_key=None):
        """h1 = h0 + Dropout(W_o o): `o` holds the heads' outputs sum_j w_ij v_j, (..., H, d_head)."""
        o = o_xHxD.reshape(*o_xHxD.shape[:-2], self.cfg.d_model)
        return h0_xd + _dropout(dense(o, self.w_out[...], compute_dtype(self.cfg)),
                                self.cfg.dropout, dropout_key)

    def block(self, h0_BxLxd, *, dropout_key=None, return_attn: bool = False):
        """The block and head applied to input embeddings h0 (what `__call__` does after E[x])."""
        h0, L = h0_BxLxd, h0_BxLxd.shape[-2]
        q, k, v = self.qkv(h0)
        # q_i^T R(j-i) k_j, unscaled; accumulated and softmaxed in float32
        scores = jnp.einsum("bihd,bjhd->bhij", q, k, preferred_element_type=jnp.float32)
        weights = self.attention_weights(scores, jnp.arange(L)[:, None])
        o = jnp.einsum("bhij,bjhd->bihd", weights.astype(v.dtype), v)
        if dropout_key is not None:
            k_att, k_mlp = jax.random.split(dropout_key)
        else:
            k_att = k_mlp = None
        h1 = self.attention_residual(h0, o, k_att)
        logits = self.mlp_and_head(h1, k_mlp)
        if return_attn:
            return logits, Attention(scores, weights)
        return logits


def keep_mask(key, rate: float, shape):
    """Boolean mask, each entry independently True with probability 1 - rate.

    Threefry-2x32 in counter mode, one hash per two entries (each hash yields two 32-bit
    words), and an integer threshold: keep iff bits >= round(rate * 2^32). The same
    Bernoulli(1 - rate) distribution as `jax.random.bernoulli` (which spends one hash per
    entry with partitionable Threefry and compares a 23-bit float), with half the hashing,
    which dominates dropout's cost on a CPU. `key` is a raw uint32 (2,) key.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    n = math.prod(shape)
    bits = threefry_2x32(key, jnp.arange(n, dtype=jnp.uint32)).reshape(shape)
    return bits >= jnp.uint32(min(round(rate * 2.0 ** 32), 2 ** 32 - 1))


def _dropout(x, rate, key):
    """Inverted dropout (see `keep_mask`); identity when key is None or rate == 0."""
    if key is None or rate == 0.0:
        return x
    return jnp.where(keep_mask(key, rate, x.shape), x / (1.0 - rate), 0.0).astype(x.dtype)


def init_model(cfg: ModelConfig, seed: int) -> ToyTransformer:
    """A freshly initialised model (deterministic in `seed`)."""
    return ToyTransformer(cfg, rngs=nnx.Rngs(params=seed))


def split_model(model: ToyTransformer):
    """(graphdef, params): params is a plain nested dict of arrays (what the trainer uses)."""
    graphdef, state = nnx.split(model, nnx.Param)
    return graphdef, nnx.to_pure_dict(state)


def init_params(cfg: ModelConfig, key) -> dict:
    """Parameters (plain dict of arrays) from a PRNG key; vmappable over keys."""
    return split_model(ToyTransformer(cfg, rngs=nnx.Rngs(params=key)))[1]


def graphdef_for(cfg: ModelConfig):
    """The (static) graph definition of the model with config `cfg`."""
    return nnx.split(nnx.eval_shape(lambda: init_model(cfg, 0)), nnx.Param)[0]


def merge(graphdef, params) -> ToyTransformer:
    """The module with parameters `params` (a dict from `split_model` / `init_params`)."""
    return nnx.merge(graphdef, params)


def apply(graphdef, params, x_BxL, *, dropout_key=None, return_attn: bool = False):
    """Pure forward: merge the parameters into the graph and call the model."""
    return nnx.merge(graphdef, params)(x_BxL, dropout_key=dropout_key, return_attn=return_attn)


def count_params(params) -> int:
    return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))


def logits_at(model: ToyTransformer, x_BxL, pos_B):
    """Logits (B, N_TARGETS) at one query position per sequence, exactly as `model(x)[b, pos_b]`
    with dropout off, but computing the query, MLP and head only there (one block: the output
    at position i depends on the other positions only through their keys and values)."""
    h0 = model.embed_tokens(x_BxL)
    q, k, v = model.qkv(h0)
    return logits_from_qkv(model, h0, q, k, v, pos_B)


def logits_from_qkv(model: ToyTransformer, h0_BxLxd, q_BxLxHxD, k_BxLxHxD, v_BxLxHxD, pos_B):
    """`logits_at` from the block input and its q, k, v (e.g. a cache updated one position at
    a time by `evaluate`'s left-to-right generation)."""
    b = jnp.arange(h0_BxLxd.shape[0])
    q_BxHxD = q_BxLxHxD[b, pos_B]
    scores_BxHxL = jnp.einsum("bhd,bjhd->bhj", q_BxHxD, k_BxLxHxD,
                              preferred_element_type=jnp.float32)
    w = model.attention_weights(scores_BxHxL, pos_B[:, None, None])
    o = jnp.einsum("bhj,bjhd->bhd", w.astype(v_BxLxHxD.dtype), v_BxLxHxD)
    return model.mlp_and_head(model.attention_residual(h0_BxLxd[b, pos_B], o))
