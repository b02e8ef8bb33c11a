"""Mechanism analysis of trained toy models (Section 4.3, Appendix F; Theorem 4.1).

Everything here reads a trained `ToyTransformer` (or a run's metrics) and returns plain numpy /
JSON-able dicts; `toy_jax/plots.py` draws them and `scripts/make_figures.py` runs both on run
directories.

Attention-score correlation (Figure 6a / Figure 9 left). The scores are the raw
q^T R(Delta) k from the [M] query to the uppercase cue B (before the 1/sqrt(d_head) scale), in
the forward contexts "[M] ... B" (distance Delta_1) and the reverse contexts "B ... [M]"
(distance Delta_2) of Appendix F.1. The paper does not say over what the correlation is taken.
Here it is taken ACROSS THE 26 LETTERS: for one forward placement (positions of [M] and B) and
one reverse placement, the 26 letters give 26 (S_fwd, S_rev) pairs, and their Pearson
correlation is one number. This is the quantity of Theorem 4.1: Corr(. | q) at fixed q (the
[M] query is the same in every context) over the randomness of the key k_B, which varies with
the letter. Every (forward placement, reverse placement) pair is used, and the correlations
are averaged per Delta_1 + Delta_2 (each placement pair weighs one, as in the paper's
permutation averaging). Uncertainty: a 95 % bootstrap interval over the 26 letters (resampled
with replacement, the whole curve recomputed), and the 5-95 % spread of the individual
placement-pair correlations. With RoPE and no learned positions, the unrotated q and k do not
depend on position, so the correlation depends on (Delta_1, Delta_2) only.

A second reading, across training: the Pearson correlation over tracking steps of the mean
forward and mean reverse score (`over_training_correlation`).

Theorem 4.1's assumptions (`assumption_check`). With RoPE, q = LN1(E[M]) W_q and
k_B = LN1(E[B]) W_k before rotation. The key covariance is Sigma = Cov_B(k_B) over the 26
uppercase letters B. The model pairs coordinate a with a + D/2 (rotate-half RoPE), so 2-D
block i is (a = i, i + D/2) with frequency theta_i = base^(-2i/D); vectors are re-laid out
as (q_i, q_{i+D/2})_i to use `theory.correlation` (which pairs adjacent coordinates).
Per block: Sigma_i is the 2x2 diagonal block, tau_i^2 = Tr Sigma_i, u_i = q_i / ||q_i||, the
fitted rho_i = 2 u_i^T Sigma_i u_i / tau_i^2 - 1 (exactly the theorem's rho_i when u_i is an
eigenvector, since then u^T Sigma_i u = tau^2 (1 + rho)/2; in [-1, 1], the theorem needs
[0, 1]), and w_i = ||q_i||^2 / ||q||^2.
"""
from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from theory.bounds import rope_thetas, trace_bound
from theory.correlation import block_weights, conditional_corr_pair
from toy_jax import data, vocab
from toy_jax.losses import prediction_offset
from toy_jax.model import ToyTransformer, logits_at
from toy_jax.records import reading
from toy_jax.tracking import cue_attention

N_BOOT = 200
BOOT_SEED = 0


# ----------------------------------------------------------------------------- correlation
def pearson_rows(x_NxK, y_MxK) -> np.ndarray:
    """Pearson correlation of every row of x with every row of y over the last axis, (N, M).

    Rows with zero variance give NaN.
    """
    x = np.asarray(x_NxK, np.float64)
    y = np.asarray(y_MxK, np.float64)
    if x.shape[-1] != y.shape[-1] or x.shape[-1] < 2:
        raise ValueError(f"need the same last axis of length >= 2, got {x.shape} and {y.shape}")
    xc = x - x.mean(-1, keepdims=True)
    yc = y - y.mean(-1, keepdims=True)
    nx = np.linalg.norm(xc, axis=-1)
    ny = np.linalg.norm(yc, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc @ yc.T) / (nx[:, None] * ny[None, :])


def _group_mean(values_NxM, keys_NxM, n_keys: int):
    """Mean of the finite values per integer key 0..n_keys-1 (NaN where there is none)."""
    v = values_NxM.ravel()
    k = keys_NxM.ravel()
    ok = np.isfinite(v)
    s = np.bincount(k[ok], weights=v[ok], minlength=n_keys)
    n = np.bincount(k[ok], minlength=n_keys)
    with np.errstate(invalid="ignore"):
        return s / n, n


def correlation_by_delta_sum(fwd_LETxP, rev_LETxP, delta1_P, delta2_P, n_boot: int = N_BOOT,
                             seed: int = BOOT_SEED) -> dict:
    """Across-letter correlation of forward and reverse scores, grouped by Delta_1 + Delta_2.

    fwd_LETxP[b, p] is the score of letter b in forward placement p (distance delta1_P[p]);
    rev_LETxP[b, r] likewise for reverse placement r (distance delta2_P[r]). Returns per
    s = Delta_1 + Delta_2: the mean correlation over all (p, r) pairs with that sum, the
    number of pairs, the 5 / 95 % quantiles of the pair correlations, and a 95 % bootstrap
    interval of the mean over resampled letters; plus the Delta_1 x Delta_2 mean grid and the
    'corresponding' pairs (r = p with the two positions swapped, so Delta_1 = Delta_2).
    """
    fwd = np.asarray(fwd_LETxP, np.float64)
    rev = np.asarray(rev_LETxP, np.float64)
    d1 = np.asarray(delta1_P, np.int64)
    d2 = np.asarray(delta2_P, np.int64)
    C_PxR = pearson_rows(fwd.T, rev.T)
    S_PxR = d1[:, None] + d2[None, :]
    n_s = int(S_PxR.max()) + 1
    mean_s, count_s = _group_mean(C_PxR, S_PxR, n_s)
    q05 = np.full(n_s, np.nan)
    q95 = np.full(n_s, np.nan)
    for s in np.unique(S_PxR):
        c = C_PxR[S_PxR == s]
        c = c[np.isfinite(c)]
        if c.size:
            q05[s], q95[s] = np.quantile(c, [0.05, 0.95])
    rng = np.random.default_rng(seed)
    n_let = fwd.shape[0]
    boot = np.empty((n_boot, n_s))
    for i in range(n_boot):
        idx = rng.integers(0, n_let, n_let)
        boot[i] = _group_mean(pearson_rows(fwd[idx].T, rev[idx].T), S_PxR, n_s)[0]
    lo = hi = np.full(n_s, np.nan)
    if n_boot:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups of absent sums
            lo, hi = np.nanquantile(boot, [0.025, 0.975], axis=0)
    D = max(int(d1.max()), int(d2.max())) + 1
    grid = np.full((D, D), np.nan)
    for a in np.unique(d1):
        for b in np.unique(d2):
            c = C_PxR[np.ix_(d1 == a, d2 == b)]
            c = c[np.isfinite(c)]
            if c.size:
                grid[a, b] = c.mean()
    same = C_PxR.diagonal() if C_PxR.shape[0] == C_PxR.shape[1] else np.array([])
    keep = count_s > 0
    sums = np.nonzero(keep)[0]
    return {
        "delta_sum": sums.tolist(),
        "corr_mean": mean_s[keep].tolist(),
        "n_pairs": count_s[keep].astype(int).tolist(),
        "corr_q05": q05[keep].tolist(),
        "corr_q95": q95[keep].tolist(),
        "ci95_lo": np.asarray(lo)[keep].tolist(),
        "ci95_hi": np.asarray(hi)[keep].tolist(),
        "grid_delta1_delta2": grid.tolist(),  # [Delta_1][Delta_2], NaN where absent
        "corresponding_mean": float(np.nanmean(same)) if same.size else float("nan"),
        "overall_mean": float(np.nanmean(C_PxR)),
        "frac_positive": float(np.mean(C_PxR[np.isfinite(C_PxR)] > 0)),
        "n_nan": int(np.sum(~np.isfinite(C_PxR))),
    }


def _letter_by_placement(x_Nx, L: int) -> np.ndarray:
    """(N,) values in `data.placements` row order -> (26, C(L,2)) [letter, position pair]."""
    return np.asarray(x_Nx).reshape(vocab.N_LETTERS, -1)


def score_correlation(model: ToyTransformer, n_boot: int = N_BOOT) -> dict:
    """Figure 6a for one trained model: the across-letter correlation of the raw forward and
    reverse cue scores per Delta_1 + Delta_2 (see the module docstring), per head, with the
    reference curve (1/D) Tr R(Delta_1 + Delta_2), D = d_head (`theory.trace_bound`; meaningful
    only with pos='rope'). Theorem 4.1 bounds E_q[Corr] by it only when Delta_1 = Delta_2 and
    0 <= rho <= 1; for Delta_1 != Delta_2 it is an analogue that can fail (theory/README.md)."""
    cfg = model.cfg
    L = cfg.seq_len
    ca = cue_attention(model, L)
    fp, rp = ca["fwd_placements"], ca["rev_placements"]
    d1 = _letter_by_placement(fp[:, data.UPPER_POS] - fp[:, data.LOWER_POS], L)[0]
    d2 = _letter_by_placement(rp[:, data.LOWER_POS] - rp[:, data.UPPER_POS], L)[0]
    heads = []
    for h in range(cfg.n_heads):
        f_s, r_s = ca["fwd_score"][:, h], ca["rev_score"][:, h]
        levels = {  # common level vs letter-specific spread of the scores, and mean weights
            "fwd_score_mean": float(f_s.mean()), "rev_score_mean": float(r_s.mean()),
            "fwd_score_letter_std": float(_letter_by_placement(f_s, L).std(0).mean()),
            "rev_score_letter_std": float(_letter_by_placement(r_s, L).std(0).mean()),
            "fwd_weight_mean": float(ca["fwd_weight"][:, h].mean()),
            "rev_weight_mean": float(ca["rev_weight"][:, h].mean())}
        r = correlation_by_delta_sum(_letter_by_placement(ca["fwd_score"][:, h], L),
                                     _letter_by_placement(ca["rev_score"][:, h], L), d1, d2,
                                     n_boot=n_boot)
        heads.append({**r, **levels})
    sums = np.asarray(heads[0]["delta_sum"])
    return {"L": L, "d_head": cfg.d_head, "pos": cfg.pos, "attention": cfg.attention,
            "heads": heads,
            "theory_trace_bound": trace_bound(sums, cfg.d_head, cfg.rope_base).tolist(),
            "correlation_over": "26 letters per (forward placement, reverse placement) pair"}


def over_training_correlation(rows: list[dict], key_fwd: str = "attn_fwd_score",
                              key_rev: str = "attn_rev_score") -> float:
    """Pearson correlation, over tracking steps, of the mean forward and reverse cue scores
    (rows of one model and seed from metrics.jsonl)."""
    a = np.array([r[key_fwd] for r in rows if key_fwd in r and key_rev in r], np.float64)
    b = np.array([r[key_rev] for r in rows if key_fwd in r and key_rev in r], np.float64)
    if a.size < 3:
        return float("nan")
    return float(pearson_rows(a[None], b[None])[0, 0])


# ---------------------------------------------------------------------- Figure 5
def reverse_probabilities(model: ToyTransformer, objective: str, batch: int = 4096) -> dict:
    """Figure 5: for every reverse infill query ("A ... [M]", target the lowercase a), the
    probability of the correct lowercase, the largest probability of any other letter (the 51
    other lowercase and uppercase ids), and the probability of the pad `0`; averaged per
    target position and per distance. The prediction for the [M] at t is read at t (MDM
    objective) or t - 1 (ARM objective), as in `evaluate` (infill protocol)."""
    L = model.cfg.seq_len
    pl = data.placements(L, "reverse")
    _, tgt_pos, _, tgt_id = (np.asarray(a, np.int32) for a in data.query_spec(pl, "reverse"))
    x = np.asarray(data.make_sequences(pl, L))
    x[np.arange(len(x)), tgt_pos] = vocab.MASK
    off = prediction_offset(objective)
    fn = jax.jit(lambda xb, pb: jax.nn.softmax(logits_at(model, xb, pb), -1))
    p_NxT = np.concatenate([np.asarray(fn(jnp.asarray(x[i:i + batch]),
                                          jnp.asarray(tgt_pos[i:i + batch] - off)))
                            for i in range(0, len(x), batch)])
    rows = np.arange(len(x))
    p_tgt = p_NxT[rows, tgt_id]
    letters = p_NxT[:, vocab.LOWER0:vocab.MASK].copy()
    letters[rows, tgt_id - vocab.LOWER0] = -1.0
    p_other = letters.max(-1)
    p_pad = p_NxT[:, vocab.PAD]
    dist = pl[:, data.LOWER_POS] - pl[:, data.UPPER_POS]

    def by(key, n):
        cnt = np.bincount(key, minlength=n)
        with np.errstate(invalid="ignore"):
            return {name: (np.bincount(key, weights=v, minlength=n) / cnt).tolist()
                    for name, v in (("p_target", p_tgt), ("p_max_other", p_other),
                                    ("p_pad", p_pad))}

    return {"L": L, "objective": objective,
            "by_target_pos": by(tgt_pos, L), "by_distance": by(dist, L),
            "mean": {"p_target": float(p_tgt.mean()), "p_max_other": float(p_other.mean()),
                     "p_pad": float(p_pad.mean()),
                     "frac_target_beats_others": float(np.mean(p_tgt > p_other))}}


# ----------------------------------------------------------- Theorem 4.1's assumptions
def unrotated_qk(model: ToyTransformer, head: int = 0):
    """(q_[M] (D,), k_B (26, D)) of one head before RoPE, in the model's rotate-half layout.

    Position 0 has rotation angle 0, so q and k computed there are the unrotated vectors."""
    if model.cfg.pos != "rope":
        raise ValueError(f"the RoPE analysis needs pos='rope', the model has pos={model.cfg.pos!r}")
    toks = jnp.asarray([[vocab.MASK]] + [[vocab.upper_id(b)] for b in range(vocab.N_LETTERS)])
    q, k, _ = model.qkv(model.embed_tokens(toks))
    return np.asarray(q[0, 0, head], np.float64), np.asarray(k[1:, 0, head], np.float64)


def to_block_layout(x_xD) -> np.ndarray:
    """Rotate-half layout (a paired with a + D/2) -> adjacent pairs (x_0, x_{D/2}, x_1, ...),
    the layout of `theory.correlation` (block i = coordinates 2i, 2i+1 <-> theta_i)."""
    x = np.asarray(x_xD)
    h = x.shape[-1] // 2
    return np.stack([x[..., :h], x[..., h:]], axis=-1).reshape(x.shape)


def _corr_from_cov(q_D, Sigma_DxD, delta1: int, delta2: int, thetas_M) -> float:
    """Corr(q^T R(D1) k, q^T R(-D2) k) = x^T S y / sqrt(x^T S x  y^T S y) with
    x = R(D1)^T q, y = R(-D2)^T q (Cov(a^T k, b^T k) = a^T Cov(k) b; Appendix C.1)."""
    x = _rot_T(q_D, delta1 * thetas_M)
    y = _rot_T(q_D, -delta2 * thetas_M)
    return float(x @ Sigma_DxD @ y / math.sqrt((x @ Sigma_DxD @ x) * (y @ Sigma_DxD @ y)))


def _rot_T(q_D, ang_M):
    """R(ang)^T q in block layout (R = [[c, -s], [s, c]] per block)."""
    q = q_D.reshape(-1, 2)
    c, s = np.cos(ang_M), np.sin(ang_M)
    return np.stack([c * q[:, 0] + s * q[:, 1], -s * q[:, 0] + c * q[:, 1]], -1).ravel()


def assumption_check(model: ToyTransformer, head: int = 0) -> dict:
    """How well the trained model meets Theorem 4.1's assumptions, and what each relaxation
    predicts for the across-letter correlation (module docstring for the definitions).

    Per (Delta_1, Delta_2) with 1 <= Delta_j <= L-1, five correlations:
      measured      from the model's scores over the 26 letters (via `unrotated_qk`; equals
                    the full-covariance formula exactly, the scores being linear in k),
      blockdiag     the same formula with Sigma replaced by its 2x2 diagonal blocks,
      theorem       the closed form of Appendix C.1 with the fitted rho clipped to [0, 1]
                    and equal block variances (`theory.correlation.conditional_corr_pair`),
      rho0          rho = 0: A = sum_i w_i cos((Delta_1 + Delta_2) theta_i), the per-q bound,
      trace         (1/D) Tr R(Delta_1 + Delta_2), its expectation over an isotropic q.
    Returned averaged per Delta_1 + Delta_2 with the placement-count weights (L - Delta_1)
    (L - Delta_2), and in full on the symmetric diagonal Delta_1 = Delta_2.
    """
    cfg = model.cfg
    L, D = cfg.seq_len, cfg.d_head
    q_rh, k_rh = unrotated_qk(model, head)
    q, k = to_block_layout(q_rh), to_block_layout(k_rh)
    thetas = rope_thetas(D, cfg.rope_base)
    m = D // 2
    Sigma = np.cov(k, rowvar=False, ddof=0)
    blocks = np.stack([Sigma[2 * i:2 * i + 2, 2 * i:2 * i + 2] for i in range(m)])  # (m,2,2)
    Sigma_bd = np.zeros_like(Sigma)
    for i in range(m):
        Sigma_bd[2 * i:2 * i + 2, 2 * i:2 * i + 2] = blocks[i]
    tau2 = np.trace(blocks, axis1=1, axis2=2)
    u = q.reshape(m, 2) / np.linalg.norm(q.reshape(m, 2), axis=-1, keepdims=True)
    rayleigh = np.einsum("ma,mab,mb->m", u, blocks, u)
    rho = 2.0 * rayleigh / tau2 - 1.0
    evals, evecs = np.linalg.eigh(blocks)  # ascending
    top = evecs[:, :, 1]
    align = np.abs(np.einsum("ma,ma->m", u, top))  # |cos| to the top eigenvector
    aniso = (evals[:, 1] - evals[:, 0]) / np.maximum(evals.sum(-1), 1e-300)
    Su = np.einsum("mab,mb->ma", blocks, u)
    eig_resid = np.abs(u[:, 0] * Su[:, 1] - u[:, 1] * Su[:, 0]) / np.maximum(
        np.linalg.norm(Su, axis=-1), 1e-300)  # sin of the angle between Sigma_i u_i and u_i
    w = block_weights(q)
    offdiag_share = 1.0 - np.sum(Sigma_bd ** 2) / np.sum(Sigma ** 2)

    scores_f = np.array([[q @ _rot_T(kb, -d * thetas) for kb in k] for d in range(1, L)])
    scores_r = np.array([[q @ _rot_T(kb, d * thetas) for kb in k] for d in range(1, L)])
    deltas = np.arange(1, L)
    measured = pearson_rows(scores_f, scores_r)  # [Delta_1 - 1, Delta_2 - 1]
    blockdiag = np.array([[_corr_from_cov(q, Sigma_bd, a, b, thetas) for b in deltas]
                          for a in deltas])
    rho_c = np.clip(rho, 0.0, 1.0)
    A1, A2 = np.meshgrid(deltas, deltas, indexing="ij")
    theorem = conditional_corr_pair(np.broadcast_to(q, A1.shape + (D,)), rho_c, A1, A2,
                                    cfg.rope_base)
    rho0 = conditional_corr_pair(np.broadcast_to(q, A1.shape + (D,)), 0.0, A1, A2,
                                 cfg.rope_base)
    trace = trace_bound(A1 + A2, D, cfg.rope_base)
    wts = (L - A1) * (L - A2)
    S = A1 + A2
    sums = np.arange(2, 2 * L - 1)

    def per_sum(M):
        return [float(np.sum((M * wts)[S == s]) / np.sum(wts[S == s])) for s in sums]

    curves = {"measured": measured, "blockdiag": blockdiag, "theorem": theorem, "rho0": rho0,
              "trace": trace}
    diag = np.arange(L - 1)
    wsum = float(w.sum())
    return {
        "L": L, "d_head": D, "head": head, "n_blocks": m,
        "key_covariance_over": "26 uppercase letters B, unrotated k_B = LN1(E[B]) W_k",
        "offdiag_energy_share": float(offdiag_share),
        "blocks": {"theta": thetas.tolist(), "w": w.tolist(), "rho": rho.tolist(),
                   "tau2": tau2.tolist(), "align_top_eigvec": align.tolist(),
                   "anisotropy": aniso.tolist(), "eigvec_residual_sin": eig_resid.tolist()},
        "summary": {
            "w_weighted_align": float(np.sum(w * align) / wsum),
            "w_weighted_eigvec_residual_sin": float(np.sum(w * eig_resid) / wsum),
            "w_weighted_rho": float(np.sum(w * rho) / wsum),
            "w_weighted_anisotropy": float(np.sum(w * aniso) / wsum),
            "frac_rho_negative": float(np.mean(rho < 0)),
            "w_mass_rho_negative": float(np.sum(w[rho < 0]) / wsum),
            "tau2_cv": float(tau2.std() / tau2.mean()),
            "w_max": float(w.max()),
            "w_effective_blocks": float(1.0 / np.sum(w ** 2)),
            "w_effective_blocks_isotropic_expectation": (m + 1) / 2.0,
            "w_mass_top_quarter_freq": float(w[: max(1, m // 4)].sum()),
            "frac_pairs_measured_ge_rho0": float(np.mean(measured >= rho0 - 1e-12)),
            "frac_pairs_measured_ge_trace": float(np.mean(measured >= trace - 1e-12)),
            "frac_sym_measured_ge_rho0": float(np.mean(measured[diag, diag]
                                                       >= rho0[diag, diag] - 1e-12)),
            "frac_sym_measured_ge_trace": float(np.mean(measured[diag, diag]
                                                        >= trace[diag, diag] - 1e-12)),
            "mean_measured": float(np.sum(measured * wts) / wts.sum()),
            "mean_theorem": float(np.sum(theorem * wts) / wts.sum()),
            "mean_rho0": float(np.sum(rho0 * wts) / wts.sum()),
            "mean_trace": float(np.sum(trace * wts) / wts.sum()),
        },
        "by_delta_sum": {"delta_sum": sums.tolist(),
                         **{k: per_sum(v) for k, v in curves.items()}},
        "symmetric": {"delta": deltas.tolist(),
                      **{k: v[diag, diag].tolist() for k, v in curves.items()}},
    }


# ---------------------------------------------------------------- over training
TRACK_KEYS = ("attn_fwd_weight", "attn_rev_weight", "attn_fwd_score", "attn_rev_score",
              "infill_fwd_p_target", "infill_rev_p_target", "infill_fwd_greedy_acc",
              "infill_rev_greedy_acc", "infill_fwd_rank", "infill_rev_rank",
              "infill_fwd_letter_p_target", "infill_rev_letter_p_target",
              "infill_fwd_letter_greedy_acc", "infill_rev_letter_greedy_acc",
              "infill_fwd_letter_rank", "infill_rev_letter_rank")  # runs before the letter-level
# reading lack the rank and letter keys: `curves` fills them with NaN


def curves(rows: list[dict], name: str) -> dict:
    """Tracked metrics of model `name` from metrics.jsonl rows: {'seeds', 'step' (S,),
    key: (n_seeds, S)} for raw (key) and EMA ('ema_' + key) weights."""
    rows = [r for r in rows if r.get("model") == name and "attn_fwd_weight" in r]
    if not rows:
        raise ValueError(f"no tracking metrics for model {name!r}")
    seeds = sorted({r["seed"] for r in rows})
    steps = sorted({r["step"] for r in rows})
    si = {s: i for i, s in enumerate(steps)}
    out = {"seeds": seeds, "step": np.asarray(steps)}
    for key in TRACK_KEYS + tuple("ema_" + k for k in TRACK_KEYS) + ("loss",):
        a = np.full((len(seeds), len(steps)), np.nan)
        for r in rows:
            if key in r:
                a[seeds.index(r["seed"]), si[r["step"]]] = r[key]
        out[key] = a
    return out


def over_training_summary(c: dict, at_steps=(3000,)) -> dict:
    """Reverse / forward infill over training: value at given steps, at the end, the maximum
    and where it is reached (seed means), for raw and EMA weights; letter-level keys only when
    the run tracked them."""
    step = c["step"]
    out = {}
    for pre in ("", "ema_"):
        for key in ("infill_rev_p_target", "infill_rev_greedy_acc", "infill_fwd_p_target",
                    "infill_fwd_greedy_acc", "infill_rev_letter_greedy_acc",
                    "infill_fwd_letter_greedy_acc", "attn_fwd_weight", "attn_rev_weight"):
            if pre + key not in c or np.all(np.isnan(c[pre + key])):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # steps no seed tracked
                v = np.nanmean(c[pre + key], axis=0)
            d = {"final": float(v[-1]), "final_step": int(step[-1]),
                 "max": float(np.nanmax(v)), "argmax_step": int(step[int(np.nanargmax(v))])}
            for s in at_steps:
                if step[0] <= s <= step[-1]:
                    d[f"at_{s}"] = float(v[int(np.argmin(np.abs(step - s)))])
            out[pre + key] = d
    return out


# -------------------------------------------------------------------- result tables
# Table 2 of the paper: top-3 success (%) averaged over 3 seeds, (forward, reverse) per L.
PAPER_TABLE2 = {"mdm": {10: (99.31, 43.10), 20: (97.36, 55.70), 30: (96.91, 33.89),
                        40: (97.27, 38.37)},
                "arm": {10: (99.83, 0.00), 20: (99.80, 0.00), 30: (99.93, 0.00),
                        40: (99.93, 0.00)}}


def seed_values(results: dict, name: str, weights: str, direction: str, protocol: str,
                metric: str = "topk_success") -> list[float]:
    """One metric of one model for every seed of a results.json dict."""
    out = []
    for s in results["seeds"]:
        out.append(float(reading(results, s, name, weights)[direction][protocol][metric]))
    return out


# ----------------------------------------------------------------------------- ARM positions
def arm_hazard(model: ToyTransformer) -> dict:
    """Does a causal model know where it is? The next-token rule of the toy task.

    After the lowercase at position i and pad up to position p - 1, the uppercase sits at p
    with the Bayes-optimal (hazard) probability 1 / (L - p): it is uniform over i+1..L-1. The
    hazard depends on the absolute position p, not only on the distance p - i. For every
    such prefix (26 letters x every i < p) this reads the model's p(uppercase at p) (its
    logits at p - 1) and returns, over all prefixes:

      `mae`    mean |model - optimal|;
      `slope`  the regression slope of model on optimal hazard after removing each distance's
               mean from both: 0 for a model that sees only the distance p - i (a causal RoPE
               decoder without an absolute anchor), 1 for one that tracks p;
      `completion_estimate`  the forward completion these hazards imply: the mean over cue
               positions of the probability that top-3 sampling emits the uppercase before
               the end, each step's hazard renormalised over the model's top 3 (assuming the
               earlier steps emitted pad; greedy never emits it while pad stays first).
    """
    L = model.cfg.seq_len
    rows = [(c, i, p) for c in range(vocab.N_LETTERS) for i in range(L - 1)
            for p in range(i + 1, L)]
    c, i, p = (np.asarray(a, np.int32) for a in zip(*rows))
    x = np.full((len(rows), L), vocab.PAD, np.int32)
    x[np.arange(len(rows)), i] = vocab.LOWER0 + c
    prob = jax.jit(lambda xb, qb: jax.nn.softmax(logits_at(model, xb, qb), -1))(
        jnp.asarray(x), jnp.asarray(p - 1))
    prob = np.asarray(prob, np.float64)
    n = np.arange(len(rows))
    h = prob[n, vocab.UPPER0 + c]
    top3 = np.sort(prob, -1)[:, -3:]
    h_top3 = np.where(h >= top3[:, 0], h / top3.sum(-1), 0.0)  # renormalised over the top 3
    opt = 1.0 / (L - p)
    dist = p - i
    hd, od = h.copy(), opt.copy()
    for d in np.unique(dist):
        sel = dist == d
        hd[sel] -= h[sel].mean()
        od[sel] -= opt[sel].mean()
    slope = float((hd * od).sum() / (od * od).sum()) if (od * od).sum() > 0 else float("nan")
    # rows are ordered by (letter, cue position, p): one run of rows per prompt
    starts = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (i[1:] != i[:-1])])
    miss = np.multiply.reduceat(1.0 - h_top3, starts)
    return {"mae": float(np.abs(h - opt).mean()), "slope": slope,
            "completion_estimate": float(1.0 - miss.mean()),
            "n_prefixes": len(rows)}
