"""lm-evaluation-harness model: the Monte-Carlo estimator, `until` cuts, and end-to-end runs on tiny-llada.

The estimator and generation tests run without lm_eval; the harness runs (simple_evaluate on
a local task, the README command) only where `pip install -e ".[lm-eval]"` was done.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from largescale_torch.harness import (
    MDMHarness,
    cut_at_until,
    encode_pair,
    mask_counts,
    mc_loglikelihood,
    random_masks,
    split_trailing_space,
)

ROOT = Path(__file__).resolve().parents[1]
V, MASK = 11, 10


def _fixed_logits(A: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(A, V, generator=torch.Generator().manual_seed(seed)) * 2


def test_mask_counts_cover_every_count_once_when_rows_equal_answer_length():
    """With n_rows == A the evenly spread counts are a permutation of 1..A, whatever k is drawn."""
    g = torch.Generator().manual_seed(0)
    for A in (1, 2, 5, 9):
        for _ in range(20):
            assert sorted(mask_counts(A, A, g).tolist()) == list(range(1, A + 1))


def test_mask_counts_are_marginally_uniform():
    g = torch.Generator().manual_seed(1)
    counts = torch.cat([mask_counts(4, 3, g) for _ in range(4000)])
    freq = torch.bincount(counts, minlength=5)[1:].double() / len(counts)
    assert counts.min() >= 1 and counts.max() <= 4
    assert torch.allclose(freq, torch.full((4,), 0.25, dtype=torch.float64), atol=0.02)


def test_random_masks_mask_exactly_the_drawn_counts():
    g = torch.Generator().manual_seed(2)
    counts = torch.tensor([1, 3, 6, 2])
    masks = random_masks(counts, 6, g)
    assert masks.sum(1).tolist() == counts.tolist()


def test_prompt_is_never_masked_and_answer_gets_one_to_all_masks():
    prompt, answer = [1, 2, 3], [4, 5, 6, 7]
    seen = []

    def fake(x_BxL):
        seen.append(x_BxL.clone())
        return _fixed_logits(len(answer))[None].expand(x_BxL.shape[0], -1, -1)

    mc_loglikelihood(fake, prompt, answer, MASK, mc_num=40, batch_size=7, generator=torch.Generator().manual_seed(3))
    x = torch.cat(seen)
    assert x.shape == (40, 7)
    assert (x[:, :3] == torch.tensor(prompt)).all()
    n_masked = (x[:, 3:] == MASK).sum(1)
    assert n_masked.min() >= 1 and n_masked.max() <= 4
    assert ((x[:, 3:] == MASK) | (x[:, 3:] == torch.tensor(answer))).all()


def test_estimate_is_unbiased_for_a_context_free_model():
    """Predictions independent of the context make the bound tight: E[estimate] = sum_i log p(a_i)."""
    answer = [0, 3, 7, 2, 9]
    logits_AxV = _fixed_logits(len(answer))
    logp_AxV = torch.log_softmax(logits_AxV.masked_fill(torch.arange(V) == MASK, -torch.inf), -1)
    exact = float(logp_AxV[torch.arange(len(answer)), answer].sum())

    def fake(x_BxL):
        return logits_AxV[None].expand(x_BxL.shape[0], -1, -1)

    g = torch.Generator().manual_seed(4)
    draws = torch.tensor([mc_loglikelihood(fake, [1, 2], answer, MASK, mc_num=16, batch_size=8, generator=g)
                          for _ in range(300)], dtype=torch.float64)
    sem = float(draws.std() / len(draws) ** 0.5)
    assert draws.std() > 0.1  # the estimator does vary: the test below is not vacuous
    assert abs(float(draws.mean()) - exact) < 4 * sem, (float(draws.mean()), exact, sem)


def test_estimate_rejects_empty_answer_and_bad_counts():
    with pytest.raises(ValueError, match="empty"):
        mc_loglikelihood(lambda x: x, [1], [], MASK)
    with pytest.raises(ValueError, match="positive"):
        mc_loglikelihood(lambda x: x, [1], [2], MASK, mc_num=0)


@pytest.mark.parametrize("text,until,expected", [
    ("Paris. London\nRome", ["\n"], "Paris. London"),
    ("Paris. London\nRome", ["\n", "."], "Paris"),
    ("Paris", ["\n"], "Paris"),
    ("Paris", [], "Paris"),
    ("ab<|eot_id|>cd", ["<|eot_id|>", ""], "ab"),
])
def test_cut_at_until(text, until, expected):
    assert cut_at_until(text, until) == expected


def test_trailing_space_of_the_context_moves_to_the_continuation():
    assert split_trailing_space("Q: x? A: ", "Paris") == ("Q: x? A:", " Paris")
    assert split_trailing_space("Q: x? A:", " Paris") == ("Q: x? A:", " Paris")


def test_imports_without_lm_eval_and_register_says_how_to_install():
    code = ("import sys; sys.modules['lm_eval'] = None\n"
            "import largescale_torch.harness as h\n"
            "assert h.MDMHarness and h.mc_loglikelihood\n"
            "try:\n    h.register()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'lm_eval is not installed: pip install -e ".[lm-eval]"'


# --- tiny-llada ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def harness():
    torch.set_num_threads(1)
    return MDMHarness(pretrained="tiny-llada", device="cpu", gen_length=16, steps=16, block_length=16,
                      mc_num=8, batch_size=4)


def _req(*args):
    return SimpleNamespace(args=args)


def test_encode_pair_concatenates_to_the_whole(harness):
    tok = harness.tokenizer
    ctx, cont = encode_pair(tok, "Q: Who is Mary Lee Pfeiffer's son? A: ", "Tom Cruise")
    assert ctx + cont == tok("Q: Who is Mary Lee Pfeiffer's son? A: Tom Cruise").input_ids
    assert tok.decode(cont) == " Tom Cruise"


def test_generate_until_cuts_at_the_until_strings(harness):
    prompts = ["Q: Who is Tom Cruise's mother?\nA:", "Daphne Barrington is", "The parent of"]
    full = harness.generate_until([_req(p, {"until": []}) for p in prompts])
    assert len(full) == 3 and all(isinstance(t, str) for t in full)
    assert any(len(t) >= 3 for t in full), full  # random weights: something to cut
    stops = [t[len(t) // 2: len(t) // 2 + 2] if len(t) >= 3 else "\n" for t in full]
    cut = harness.generate_until([_req(p, {"until": [s]}) for p, s in zip(prompts, stops)])
    for t, s, c in zip(full, stops, cut):
        assert c == (t[: t.find(s)] if s in t else t)
    assert any(c != t for c, t in zip(cut, full))
    assert harness.generate_until([_req(prompts[0], {"until": stops[0]})]) == cut[:1]  # a bare string


def test_loglikelihood_on_tiny_llada(harness):
    ctx = "Q: Who is Tom Cruise's mother?\nA:"
    prompt = harness.tokenizer(ctx).input_ids
    from largescale_torch.sampler import llada_generate

    x = torch.tensor([prompt])
    best = llada_generate(harness.model, x, torch.ones_like(x), harness.ids.mask, gen_length=3, block_length=3,
                          steps=3)[0].tolist()
    assert harness.greedy_reproduces(prompt, best)
    other = best[:-1] + [(best[-1] + 1) % harness.ids.mask]
    assert not harness.greedy_reproduces(prompt, other)
    (ll_a, g_a), (ll_b, _) = harness.loglikelihood([_req(ctx, " Mary Lee"), _req(ctx, " Mary Lee Pfeiffer")])
    assert isinstance(g_a, bool)
    assert -1e4 < ll_b < ll_a < 0  # one more token lowers the bound of an untrained model
    with pytest.raises(NotImplementedError, match="rolling"):
        harness.loglikelihood_rolling([_req("text")])


@pytest.mark.parametrize("preset", ["tiny-llada", "tiny-dream"])
def test_answer_logits_are_the_models_aligned_predictions(preset):
    """Answer position i is scored by the logits at i (LLaDA) or at i - 1 (Dream), as the MDM loss reads them."""
    from largescale_torch.losses import align_logits

    torch.set_num_threads(1)
    h = MDMHarness(pretrained=preset, device="cpu", gen_length=8, steps=8, block_length=8)
    x_BxL = torch.tensor([[5, 6, 7, 8, h.ids.mask, 9], [5, 6, h.ids.mask, 8, 9, h.ids.mask]])
    with torch.no_grad():
        full_BxLxV = align_logits(h.model(input_ids=x_BxL).logits, h.spec.logits_shift)
    got_BxAxV = h._answer_logits(3)(x_BxL)
    assert torch.allclose(got_BxAxV, full_BxLxV[:, -3:], atol=1e-5)
    assert not torch.allclose(got_BxAxV, full_BxLxV[:, -4:-1], atol=1e-5)


def test_adapter_is_loaded(harness, tmp_path):
    from largescale_torch.modeling import add_lora, load_base, pick_dtype

    base, _, _ = load_base(harness.spec, pick_dtype("fp32"))
    lora = add_lora(base)
    with torch.no_grad():  # LoRA starts as the identity (B = 0); make it change the model
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    lora.save_pretrained(tmp_path / "adapter")
    tuned = MDMHarness(pretrained="tiny-llada", adapter=str(tmp_path / "adapter"), device="cpu", gen_length=16,
                       steps=16, block_length=16)
    assert tuned.tokenizer_name.endswith("adapter")
    x_BxL = torch.tensor([[5, 6, 7, harness.ids.mask, 9]])
    assert not torch.allclose(tuned._answer_logits(2)(x_BxL), harness._answer_logits(2)(x_BxL))


def test_harness_rejects_bad_args():
    with pytest.raises(ValueError, match="unknown model_args"):
        MDMHarness(pretrained="tiny-llada", device="cpu", mc_nums=3)
    with pytest.raises(ValueError, match="ARM"):
        MDMHarness(pretrained="tiny-llama", device="cpu")
    with pytest.raises(ValueError, match="block_length"):
        MDMHarness(pretrained="tiny-llada", device="cpu", gen_length=16, block_length=5)
    with pytest.raises(ValueError, match="remasking"):
        MDMHarness(pretrained="tiny-llada", device="cpu", remasking="highest_entropy")


# --- lm_eval end to end -------------------------------------------------------------------------

ROWS = [
    {"question": "Q: Who is Orla Vennick's mother?\nA:", "answer": "Maren Vennick",
     "choices": [" Maren Vennick", " Tobias Quell"], "label": 0},
    {"question": "Q: Who is the child of Tobias Quell?\nA:", "answer": "Edda Quell",
     "choices": [" Ilse Darrow", " Edda Quell"], "label": 1},
    {"question": "Q: Who wrote 'Glass Harbour'?\nA:", "answer": "Ilse Darrow",
     "choices": [" Maren Vennick", " Ilse Darrow"], "label": 1},
]


def _write_tasks(d: Path) -> None:
    data = d / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    common = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
              "doc_to_text: \"{{question}}\"\nmetadata:\n  version: 1.0\n")
    (d / "mc.yaml").write_text("task: tmp_mc\noutput_type: multiple_choice\ndoc_to_choice: choices\n"
                               "doc_to_target: label\nmetric_list:\n  - metric: acc\n" + common)
    (d / "gen.yaml").write_text("task: tmp_gen\noutput_type: generate_until\ndoc_to_target: \" {{answer}}\"\n"
                                "generation_kwargs:\n  until:\n    - \"\\n\"\nmetric_list:\n  - metric: exact_match\n"
                                + common)


def test_simple_evaluate_on_a_local_task(tmp_path):
    pytest.importorskip("lm_eval")
    import lm_eval
    from lm_eval.tasks import TaskManager

    from largescale_torch.harness import MODEL_NAME, register

    torch.set_num_threads(1)
    cls = register()
    assert register() is cls  # idempotent
    _write_tasks(tmp_path)
    out = lm_eval.simple_evaluate(
        model=MODEL_NAME,
        model_args={"pretrained": "tiny-llada", "mc_num": 4, "gen_length": 8, "steps": 8, "block_length": 8},
        tasks=["tmp_mc", "tmp_gen"], task_manager=TaskManager(include_path=str(tmp_path)), device="cpu",
        batch_size=2, log_samples=True)
    res = out["results"]
    assert 0.0 <= res["tmp_mc"]["acc,none"] <= 1.0
    assert 0.0 <= res["tmp_gen"]["exact_match,none"] <= 1.0
    mc = out["samples"]["tmp_mc"]
    assert len(mc) == 3 and all(len(s["resps"]) == 2 for s in mc)  # one (logprob, greedy) per choice
    for s in mc:
        for (ll, greedy), in s["resps"]:
            assert float(ll) < 0 and str(greedy) in ("True", "False")
    gen = out["samples"]["tmp_gen"]
    assert len(gen) == 3 and all("\n" not in s["resps"][0][0] for s in gen)


def _readme_command() -> list[str]:
    text = (ROOT / "largescale_torch" / "README.md").read_text()
    section = text.split("## lm-evaluation-harness", 1)[1].split("\n## ", 1)[0]
    lines = [ln.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S) for ln in b.splitlines()]
    cmds = [ln for ln in lines if ln.startswith("python -m largescale_torch.harness")]
    assert len(cmds) == 1, cmds
    return shlex.split(cmds[0])


def test_readme_command_runs_as_written():
    pytest.importorskip("lm_eval")
    argv = _readme_command()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for task in ("reversal_demo_mc", "reversal_demo_gen"):
        assert re.search(rf"\|{task}\s*\|", out.stdout), out.stdout
