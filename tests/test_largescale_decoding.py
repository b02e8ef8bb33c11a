"""Fast decoding options of LLaDA's sampler: threshold commits, early exit, prefix cache, logits shift.

The default path must stay the paper's sampler token for token; threshold decoding with
tau > 1 must be that sampler too; a position whose confidence reaches tau is never left
masked after its step.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from largescale_torch.batching import left_pad, positions_from_mask
from largescale_torch.constants import ConfigError
from largescale_torch.evaluation import EvalConfig
from largescale_torch.modeling import load_base, resolve_model
from largescale_torch.sampler import _Forward, llada_generate, num_transfer_tokens
from test_largescale_common import data_dir  # noqa: F401

PROMPTS = [[0, 50, 60, 70, 71], [0, 80], [0, 90, 91, 5, 6, 7]]


@pytest.fixture(scope="module")
def llada(data_dir):  # noqa: F811
    torch.set_num_threads(1)
    return load_base(resolve_model("tiny-llada", data_dir), torch.float32)


def _previous_sampler(model, prompt_BxP, attn_BxP, mask_id, gen_length, block_length, steps, temperature,
                      generator):
    """The batched low-confidence sampler as it was before the fast options (a verbatim copy of its loop)."""
    B, P = prompt_BxP.shape
    x = torch.cat([prompt_BxP, torch.full((B, gen_length), mask_id, dtype=torch.long)], 1)
    attn = torch.cat([attn_BxP, torch.ones((B, gen_length), dtype=attn_BxP.dtype)], 1)
    pos = positions_from_mask(attn)
    resp = x[:, P:]
    done = torch.iinfo(torch.long).max
    for b in range(gen_length // block_length):
        idx_BxM = torch.arange(b * block_length, (b + 1) * block_length).expand(B, -1)
        for k in num_transfer_tokens(block_length, steps // (gen_length // block_length)):
            M = idx_BxM.shape[1]
            if k > 0 and M:
                with torch.no_grad():
                    h = model.model(input_ids=x, attention_mask=attn, position_ids=pos).last_hidden_state
                    h = h.gather(1, (P + idx_BxM)[..., None].expand(-1, -1, h.shape[-1]))
                    logits_BxMxV = model.lm_head(h).float()
                logits_BxMxV[..., mask_id] = -torch.inf
                probs_BxMxV = F.softmax(logits_BxMxV, dim=-1)
                if temperature == 0:
                    top_BxK = probs_BxMxV.amax(-1).topk(k, dim=-1).indices
                    V = logits_BxMxV.shape[-1]
                    x0_BxK = logits_BxMxV.gather(1, top_BxK[..., None].expand(-1, -1, V)).argmax(-1)
                else:
                    u = torch.rand(logits_BxMxV.shape, generator=generator, dtype=torch.float64)
                    x0_BxM = (logits_BxMxV.double().exp() / (-torch.log(u)) ** temperature).argmax(-1)
                    conf_BxM = probs_BxMxV.gather(-1, x0_BxM[..., None])[..., 0]
                    top_BxK = conf_BxM.topk(k, dim=-1).indices
                    x0_BxK = x0_BxM.gather(1, top_BxK)
                resp.scatter_(1, idx_BxM.gather(1, top_BxK), x0_BxK)
                idx_BxM = idx_BxM.scatter(1, top_BxK, done).sort(dim=1).values[:, : M - k]
    return resp


SETTINGS = [(32, 32, 32, 0.0), (16, 8, 4, 0.0), (12, 4, 6, 0.0), (8, 8, 16, 0.0), (16, 8, 8, 0.7)]


@pytest.mark.parametrize("gen_length,block_length,steps,temperature", SETTINGS)
def test_default_path_is_the_previous_sampler(llada, gen_length, block_length, steps, temperature):
    model, _, ids = llada
    x, attn = left_pad(PROMPTS, ids.pad)
    old = _previous_sampler(model, x, attn, ids.mask, gen_length, block_length, steps, temperature,
                            torch.Generator().manual_seed(3))
    new = llada_generate(model, x, attn, ids.mask, gen_length, block_length, steps, temperature,
                         torch.Generator().manual_seed(3))
    assert torch.equal(new, old)


@pytest.mark.parametrize("gen_length,block_length,steps,temperature", SETTINGS)
def test_threshold_above_one_is_the_exact_sampler(llada, gen_length, block_length, steps, temperature):
    model, _, ids = llada
    x, attn = left_pad(PROMPTS, ids.pad)
    exact_trace, fast_trace, stats = [], [], {}
    exact = llada_generate(model, x, attn, ids.mask, gen_length, block_length, steps, temperature,
                           torch.Generator().manual_seed(3), trace=exact_trace)
    fast = llada_generate(model, x, attn, ids.mask, gen_length, block_length, steps, temperature,
                          torch.Generator().manual_seed(3), trace=fast_trace, threshold=1.01, stats=stats)
    assert torch.equal(fast, exact)
    n_steps = min(steps // (gen_length // block_length), block_length) * (gen_length // block_length)
    assert len(fast_trace) == n_steps == stats["forward_passes"]
    for a, b in zip(fast_trace, exact_trace):  # the same tokens after every step
        assert torch.equal(a, b)
    if steps == gen_length == block_length:  # one commit per step
        masked = [(t == ids.mask).sum(1) for t in [torch.full_like(fast, ids.mask)] + fast_trace]
        assert all(torch.equal(m0 - m1, torch.ones_like(m0)) for m0, m1 in zip(masked, masked[1:]))


class PeakModel(torch.nn.Module):
    """Fixed logits with one peak per (row, position): confidence of position i is that of `peaks_BxL`.

    `peaks_BxL[r, i]` is the logit of token `tokens_BxL[r, i]` (all other logits 0), plus `gain`
    times the number of unmasked positions of the row, so confidences grow as a row is decoded.
    """

    def __init__(self, peaks_BxL, tokens_BxL, mask_id, gain=0.0, vocab=16):
        super().__init__()
        self.peaks, self.tokens, self.mask_id, self.gain, self.vocab = peaks_BxL, tokens_BxL, mask_id, gain, vocab
        self.calls = 0

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        self.calls += 1
        B, L = input_ids.shape
        attended = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        unmasked_B = ((input_ids != self.mask_id) & attended.bool()).sum(1, keepdim=True).float()
        logits = torch.zeros(B, L, self.vocab)
        logits.scatter_(2, self.tokens[:, :L, None], (self.peaks[:, :L] + self.gain * unmasked_B)[..., None])
        return SimpleNamespace(logits=logits)


def _confidences(model, x_BxL, attn_BxL):
    logits = model(x_BxL, attn_BxL).logits
    logits[..., model.mask_id] = -torch.inf
    return logits.softmax(-1).amax(-1)


def _reference_threshold(model, prompt: list[int], mask_id: int, gen_length: int, tau: float) -> list[list[int]]:
    """One row, one block: commit every masked position with confidence >= tau, else the most confident."""
    x = torch.tensor([prompt + [mask_id] * gen_length])
    P, states = len(prompt), []
    while (x[0, P:] == mask_id).any():
        logits = model(x).logits[0, P:]
        logits[:, mask_id] = -torch.inf
        conf, x0 = logits.softmax(-1).max(-1)
        conf[x[0, P:] != mask_id] = -torch.inf
        commit = conf >= tau
        commit[conf.argmax()] = True
        x[0, P:][commit] = x0[commit]
        states.append(x[0, P:].tolist())
    return states


def _peak_model(gain=0.0, seed=0, B=3, L=20, mask_id=15):
    g = torch.Generator().manual_seed(seed)
    peaks = torch.rand(B, L, generator=g) * 6
    tokens = torch.randint(1, mask_id, (B, L), generator=g)
    return PeakModel(peaks, tokens, mask_id, gain)


@pytest.mark.parametrize("tau", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("gain", [0.0, 0.4])
def test_confident_positions_are_committed_at_their_step(tau, gain):
    model = _peak_model(gain)
    prompts = [[1, 2, 3, 4], [1, 2], [1, 2, 3]]
    x, attn = left_pad(prompts, 0)
    P, G = x.shape[1], 8
    trace, stats = [], {}
    out = llada_generate(model, x, attn, model.mask_id, G, G, G, threshold=tau, trace=trace, stats=stats)
    assert not (out == model.mask_id).any()
    before = torch.full_like(out, model.mask_id)
    for after in trace:
        seq = torch.cat([x, before], 1)
        conf = _confidences(model, seq, torch.cat([attn, torch.ones_like(before)], 1))[:, P:]
        was_masked = before == model.mask_id
        confident = was_masked & (conf >= tau)
        assert (after[confident] != model.mask_id).all()  # never left masked after its step
        committed = was_masked & (after != model.mask_id)
        assert ((committed.sum(1) >= 1) | ~was_masked.any(1)).all()  # at least one per step
        assert torch.equal(after[~was_masked], before[~was_masked])  # never re-masked or changed
        before = after
    # each row decodes as it would alone (left padding is invisible to this model, which reads columns)
    assert stats["forward_passes"] == len(trace) == max(stats["row_forward_passes"])
    for r in range(3):
        alone = _reference_threshold(PeakModel(model.peaks[r:r + 1, P - len(prompts[r]):],
                                               model.tokens[r:r + 1, P - len(prompts[r]):], model.mask_id, gain),
                                     prompts[r], model.mask_id, G, tau)
        assert out[r].tolist() == alone[-1] and stats["row_forward_passes"][r] == len(alone)


def test_early_exit_when_everything_is_confident():
    model = _peak_model()
    model.peaks.fill_(20.0)  # every confidence ~1
    x, attn = left_pad([[1, 2, 3]] * 3, 0)
    stats = {}
    out = llada_generate(model, x, attn, model.mask_id, 8, 4, 8, threshold=0.9, stats=stats)
    assert stats["forward_passes"] == 2 == model.calls  # one pass per block instead of 4
    assert stats["row_forward_passes"] == [2, 2, 2]
    assert torch.equal(out, model.tokens[:, 3:11])
    exact = {}
    llada_generate(model, x, attn, model.mask_id, 8, 4, 8, stats=exact)
    assert exact["forward_passes"] == 8


class PositionModel(torch.nn.Module):
    """Predicts token 10 + position id at every position, so a shift by one is visible."""

    mask_id = 99

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        B, L = input_ids.shape
        return SimpleNamespace(logits=F.one_hot(10 + position_ids, 100).float() * 5)


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_logits_shift_reads_the_previous_position(threshold):
    model = PositionModel()
    prompts = [[1, 2, 3, 4], [1, 2]]
    x, attn = left_pad(prompts, 0)
    G = 6
    plain = llada_generate(model, x, attn, model.mask_id, G, G, G, threshold=threshold)
    shifted = llada_generate(model, x, attn, model.mask_id, G, G, G, threshold=threshold, logits_shift=True)
    for r, p in enumerate(prompts):
        assert plain[r].tolist() == [10 + len(p) + j for j in range(G)]
        assert shifted[r].tolist() == [10 + len(p) + j - 1 for j in range(G)]


@pytest.mark.parametrize("keep_offset", [0, 8, -1])
@torch.no_grad()
def test_prefix_cache_equals_full_pass_when_nothing_changes(llada, keep_offset):
    model, _, ids = llada
    x, attn = left_pad(PROMPTS, ids.pad)
    B, P = x.shape
    g = torch.Generator().manual_seed(0)
    seq = torch.cat([x, torch.randint(0, ids.mask, (B, 16), generator=g)], 1)
    seq[:, P + 12:] = ids.mask
    full_attn = torch.cat([attn, torch.ones(B, 16, dtype=attn.dtype)], 1)
    pos = positions_from_mask(full_attn)
    keep = P + keep_offset
    cols = torch.arange(keep, P + 16).expand(B, -1)
    uncached = _Forward(model, seq, full_attn, pos, prefix_cache=False)(cols)
    cached = _Forward(model, seq, full_attn, pos, prefix_cache=True)
    cached.refresh(keep)
    first, second, third = cached(cols), cached(cols), cached(cols)  # full pass, then twice from the cache
    assert cached.cache.get_seq_length() == keep
    for logits in (first, second, third):
        assert torch.allclose(logits, uncached, atol=1e-5)
    # the cache is really read: a changed prefix is not seen until the next refresh
    seq[:, P - 2] = (seq[:, P - 2] + 1) % ids.mask  # cached for every keep_offset
    stale = cached(cols)
    fresh = _Forward(model, seq, full_attn, pos, prefix_cache=False)(cols)
    assert torch.allclose(stale, uncached, atol=1e-5) and not torch.allclose(fresh, uncached, atol=1e-3)


def test_prefix_cache_decoder_runs_and_fills_the_response(llada):
    model, _, ids = llada
    x, attn = left_pad(PROMPTS, ids.pad)
    for shift in (False, True):
        stats = {}
        out = llada_generate(model, x, attn, ids.mask, 16, 8, 16, threshold=0.5, prefix_cache=True,
                             logits_shift=shift, stats=stats)
        assert out.shape == (3, 16) and not (out == ids.mask).any() and stats["forward_passes"] <= 16
    with torch.no_grad():  # the first step of a block is a full pass: one-step blocks equal the uncached sampler
        a = llada_generate(model, x, attn, ids.mask, 16, 4, 4, prefix_cache=True)
        b = llada_generate(model, x, attn, ids.mask, 16, 4, 4)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs,message", [
    (dict(gen_length=32, block_length=10), "multiple of block_length"),
    (dict(gen_length=32, block_length=16, steps=3), "multiple of the 2 blocks"),
    (dict(steps=0), "positive multiple"),
    (dict(remasking="lowest"), "unknown remasking"),
    (dict(threshold=0.0), "threshold must be"),
    (dict(threshold=float("nan")), "threshold must be"),
    (dict(threshold=0.9, remasking="random"), "needs remasking"),
    (dict(temperature=-1.0), "temperature"),
    (dict(batch_size=0), "batch_size"),
])
def test_eval_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        EvalConfig(**kwargs).validate()
    assert "\n" not in str(err.value)


def test_eval_config_records_its_decoding():
    EvalConfig().validate()
    cfg = EvalConfig(threshold=0.9, prefix_cache=True)
    cfg.validate()
    assert cfg.decoding() == {"sampler": "llada_low_confidence", "mode": "threshold", "gen_length": 32,
                              "block_length": 32, "steps": 32, "temperature": 0.0, "remasking": "low_confidence",
                              "threshold": 0.9, "prefix_cache": True, "logits_shift": False}
    assert cfg.to_dict()["threshold"] == 0.9 and EvalConfig().decoding()["mode"] == "exact"


def test_random_remasking_fills_and_is_seeded(llada):
    model, _, ids = llada
    x, attn = left_pad(PROMPTS, ids.pad)
    a = llada_generate(model, x, attn, ids.mask, 8, 8, 8, generator=torch.Generator().manual_seed(1),
                       remasking="random")
    b = llada_generate(model, x, attn, ids.mask, 8, 8, 8, generator=torch.Generator().manual_seed(1),
                       remasking="random")
    assert torch.equal(a, b) and not (a == ids.mask).any()


@pytest.mark.parametrize("preset", ["tiny-llada", "tiny-llama"])
def test_evaluation_reports_forward_passes_and_decoding(preset, data_dir):  # noqa: F811
    from largescale_torch.data import build_task
    from largescale_torch.evaluation import evaluate_directions

    model, tok, ids = load_base(resolve_model(preset, data_dir), torch.float32)
    task = build_task("parent_child", "p2c", data_dir=data_dir)
    cfg = EvalConfig(batch_size=2, threshold=0.5 if preset == "tiny-llada" else None, max_new_tokens=4)
    res = evaluate_directions(model, tok, ids, task.forward[:3], task.reverse[:3], preset == "tiny-llada", cfg,
                              progress=False)
    for d in ("forward", "reverse"):
        fpq = res[d]["forward_passes_per_query"]
        assert 1 <= fpq <= (32 if preset == "tiny-llada" else 4)
        assert res[d]["forward_passes"] >= fpq  # two batches share the calls of each
    if preset == "tiny-llada":
        assert res["decoding"]["threshold"] == 0.5 and res["decoding"]["mode"] == "threshold"
    else:
        assert res["decoding"] == {"sampler": "greedy", "max_new_tokens": 4}


def test_bench_script_smoke(data_dir, tmp_path, capsys):  # noqa: F811
    """scripts/bench_sampler.py's main (largescale_torch.bench_sampler)."""
    import json

    from largescale_torch import bench_sampler as script
    assert script.main(["--taus", "0", "--data-dir", data_dir]) == 2
    assert script.main(["--run", str(tmp_path), "--data-dir", data_dir]) == 2  # not a run directory
    out = tmp_path / "bench"
    assert script.main(["--queries", "2", "--repeats", "1", "--taus", "2", "--data-dir", data_dir,
                        "--out", str(out)]) == 0
    rows = json.loads(out.with_name("bench.json").read_text())["rows"]
    assert [r["decoding"] for r in rows] == ["exact (paper)", "threshold 2", "threshold 2 + prefix cache"]
    assert rows[1]["forward_agreement"] == rows[1]["reverse_agreement"] == 1.0  # tau > 1 is the exact sampler
    assert rows[0]["passes_per_query"] == rows[1]["passes_per_query"] == 32
    assert "| threshold 2 |" in capsys.readouterr().out
    res = json.loads(out.with_name("bench.json").read_text())
    assert len(res["provenance"]["commit"]) == 40 and res["provenance"]["libraries"]["torch"]


def test_bench_reads_old_and_new_provenance(tmp_path):
    """Committed bench reports (provenance before plumbing.provenance.record) render as committed;
    a run's commit is read from either config.json format."""
    import json
    from pathlib import Path

    from largescale_torch import bench

    results = Path(__file__).resolve().parents[1] / "results"
    for f in sorted(results.glob("bench_decoding_*.json")):
        assert bench.render_markdown(json.loads(f.read_text())) == f.with_suffix(".md").read_text(), f.name
    for prov in ({"git": {"commit": "abc", "dirty": False}}, {"commit": "abc", "dirty": False}):
        (tmp_path / "config.json").write_text(json.dumps({"config": {}, "provenance": prov}))
        assert bench.run_commit(tmp_path) == "abc"
