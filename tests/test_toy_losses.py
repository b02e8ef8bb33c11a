import jax
import jax.numpy as jnp
import numpy as np

from toy_jax import losses, vocab


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_mdm_loss_matches_numpy():
    rng = np.random.default_rng(0)
    B, L, T = 3, 4, vocab.N_TARGETS
    logits = rng.normal(size=(B, L, T)).astype(np.float32)
    x = rng.integers(0, T, size=(B, L)).astype(np.int32)
    masked = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    t = np.array([0.5, 0.1, 0.9], np.float32)
    lp = _log_softmax(logits.astype(np.float64))
    expect = np.mean([sum(-lp[b, i, x[b, i]] for i in range(L) if masked[b, i]) / t[b]
                      for b in range(B)])
    got = losses.mdm_loss_from_masks(jnp.asarray(logits), jnp.asarray(x), jnp.asarray(masked),
                                     jnp.asarray(t))
    np.testing.assert_allclose(float(got), expect, rtol=1e-5)


def test_arm_loss_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 5, vocab.N_TARGETS)).astype(np.float32)
    x = rng.integers(0, vocab.N_TARGETS, size=(2, 5)).astype(np.int32)
    lp = _log_softmax(logits.astype(np.float64))
    expect = np.mean([-lp[b, i - 1, x[b, i]] for b in range(2) for i in range(1, 5)])
    np.testing.assert_allclose(float(losses.arm_loss_from_logits(jnp.asarray(logits),
                                                                 jnp.asarray(x))), expect,
                               rtol=1e-5)


def test_masking_rate_and_t_guard():
    key = jax.random.PRNGKey(0)
    t = losses.sample_t(key, 10000, 1e-3)
    assert float(t.min()) >= 1e-3 and float(t.max()) < 1.0
    x = jnp.zeros((4000, 50), jnp.int32)
    tt = jnp.full((4000,), 0.3)
    xt, m = losses.mask_tokens(key, x, tt)
    assert abs(float(m.mean()) - 0.3) < 0.01
    assert bool(((xt == vocab.MASK) == m).all())
