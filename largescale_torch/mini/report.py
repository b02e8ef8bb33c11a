"""The miniature's tables (beside the paper's Table 1) and figure, written from the results JSON alone."""
from __future__ import annotations

import math
from pathlib import Path

from largescale_torch.constants import PAPER_TABLE1
from plumbing.provenance import commit_of
from plumbing.stats import mean_sem

LABELS = {"llada": "MDM (LLaDA-style)", "llama": "ARM (Llama)"}
VARIANTS = {"trained": "finetuned", "pretrained": "pretrained only (untrained on the facts)",
            "random_init": "random initialisation", "causal_mask": "finetuned, causal mask"}


def cell(values: list[float], fmt: str = ".1f") -> str:
    """Mean ± s.e.m. of the values a record has (NaN: a reading it lacks); one value prints as "m"."""
    m, s = mean_sem(values, single=float("nan"), skip_nan=True)
    if math.isnan(m):
        return "n/a"
    return f"{m:{fmt}}" + ("" if math.isnan(s) else f" ± {s:{fmt}}")


def per_seed(values: list[float], fmt: str = ".1f") -> str:
    return ", ".join("n/a" if isinstance(v, float) and math.isnan(v) else f"{v:{fmt}}" for v in values)


def count(values: list[float]) -> str:
    """A count that is the same for every seed (the first seed's), or "n/a" where the records lack it."""
    v = next((x for x in values if not math.isnan(x)), float("nan"))
    return "n/a" if math.isnan(v) else f"{v:.0f}"


def chance(n_candidates: float) -> str:
    return "n/a" if math.isnan(n_candidates) else f"{(n_candidates + 1) / 2:.1f}"


def _rows(result: dict, family: str) -> list[dict]:
    return [r for r in result["records"] if r["family"] == family]


def families(result: dict) -> list[str]:
    """The configured families that have records, in config order."""
    return [f for f in result["config"]["families"] if _rows(result, f)]


def _get(record: dict, dataset: str, path: tuple) -> float:
    x = record["datasets"].get(dataset, {})
    for k in path:
        if not isinstance(x, dict) or k not in x:
            return float("nan")
        x = x[k]
    return float("nan") if x is None else float(x)


def render_markdown(result: dict) -> str:
    """Exact match beside Table 1, entity ranks with chance, the positive control and Figure 7 controls."""
    tasks = result["tasks"]
    fams = families(result)
    seeds = sorted({r["seed"] for r in result["records"]})
    L = ["# Miniature Table 1 on a CPU: pretrain, finetune on forward facts, ask in reverse", "",
         f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); mean ± s.e.m. over seeds, per-seed values "
         "in the order of the seeds. Every number below was produced by the command at the end.", "",
         "## Exact match (%), best over evaluations, beside the paper's Table 1", "",
         "| Dataset (trained direction) | " + " | ".join(f"{LABELS[f]} fwd | {LABELS[f]} rev" for f in fams)
         + " | paper LLaDA 8B fwd / rev | paper LLaMA-3.1 8B fwd / rev |",
         "|---|" + "---|---|" * len(fams) + "---|---|"]
    for d, t in tasks.items():
        paper = PAPER_TABLE1.get((d, t["direction"]), {})
        cells = []
        for f in fams:
            for k in ("forward", "reverse"):
                cells.append(cell([100 * _get(r, d, (k, "best")) for r in _rows(result, f)]))
        p = lambda fam: "/".join(f"{v:.1f}" for v in paper[fam]) if fam in paper else "n/a"  # noqa: E731
        L.append(f"| {d} ({t['direction']}; {t['train']} train, {t['reverse']} reverse queries) | "
                 + " | ".join(cells) + f" | {p('llada')} | {p('llama')} |")
    L += ["", "Per seed (forward / reverse exact match, %):", ""]
    for d in tasks:
        for f in fams:
            rs = _rows(result, f)
            L.append(f"- {d}, {LABELS[f]}: forward {per_seed([100 * _get(r, d, ('forward', 'best')) for r in rs])}; "
                     f"reverse {per_seed([100 * _get(r, d, ('reverse', 'best')) for r in rs])}")
    L += ["", "## Entity rank (1 = best) of the right answer among all candidate answers of the set", "",
          "Reverse and forward queries: rank by the answer's log-probability in the query template "
          "(ARM: log p(answer, EOS | prompt); MDM: one-shot masked pseudo-likelihood). Positive control: "
          "the training statement with its reverse-answer entity masked (MDM) / substituted (ARM: whole-"
          "statement likelihood; in brackets its prefix-only score, all left-to-right generation can use). "
          "Chance = (N + 1) / 2 for N candidates. Candidates are entities: an entity scores the best of its "
          "answers, so Person-Description's paraphrases of the right description are not wrong answers (records "
          "written before this rule rank its 45 forward strings, N = 45). Length-matched: rank among the "
          "candidates with as many tokens as the right answer (a sum of log-probabilities favours short names). "
          "Finetuned weights.", "",
          "| Dataset | Model | forward rank | reverse rank | positive control | N fwd / N rev | chance fwd / rev | "
          "reverse rank, length-matched (chance) |",
          "|---|---|---|---|---|---|---|---|"]
    for d in tasks:
        for f in fams:
            rs = _rows(result, f)
            g = lambda path: [_get(r, d, ("readings", "trained", *path)) for r in rs]  # noqa: E731
            pc = cell(g(("positive_control", "mean_rank")))
            if f != "llada":
                pc += f" ({cell(g(('positive_control', 'prefix', 'mean_rank')))})"
            nf, nr = g(("forward_rank", "n_candidates")), g(("reverse_rank", "n_candidates"))
            L.append(f"| {d} | {LABELS[f]} | {cell(g(('forward_rank', 'mean_rank')))} | "
                     f"{cell(g(('reverse_rank', 'mean_rank')))} | {pc} | {count(nf)} / {count(nr)} | "
                     f"{chance(nf[0])} / {chance(nr[0])} | {cell(g(('reverse_rank', 'length_matched_rank')))} "
                     f"({cell(g(('reverse_rank', 'length_matched_chance')))}) |")
    L += ["", "Per seed (forward rank; reverse rank; positive control):", ""]
    for d in tasks:
        for f in fams:
            rs = _rows(result, f)
            g = lambda key: per_seed([_get(r, d, ("readings", "trained", key, "mean_rank")) for r in rs])  # noqa: E731
            L.append(f"- {d}, {LABELS[f]}: forward {g('forward_rank')}; reverse {g('reverse_rank')}; "
                     f"positive control {g('positive_control')}")
    L += ["", "## Reverse rank split by a shared name word (surname-copy check)", "",
          "Reverse queries whose right answer shares a name word with the entity in the prompt (e.g. "
          "\"Hailee Steinfeld's parent is\" -> \"Cheri Steinfeld\") and those that share none; n queries per "
          "subset. Chance (N + 1) / 2 is the same for every subset. Shortcut: the rank the right answer gets, "
          "without any model, when candidates are scored only by sharing a word with the prompt's entity "
          "(ties at half), on the shared-word subset / on all queries; a model that only copies the surname "
          "and is at chance otherwise ranks there.", "",
          "| Dataset | Model | weights | all (n) | shares a word (n) | shares none (n) | chance | "
          "shortcut: shares a word / all |", "|---|---|---|---|---|---|---|---|"]
    for d in tasks:
        for f in fams:
            rs = _rows(result, f)
            for v in ("trained", "causal_mask"):
                g = lambda *path: [_get(r, d, ("readings", v, "reverse_rank", *path)) for r in rs]  # noqa: E731
                if all(math.isnan(x) for x in g("mean_rank")):
                    continue
                part = lambda k: f"{cell(g(k, 'mean_rank'))} ({count(g(k, 'n'))})"  # noqa: E731
                L.append(f"| {d} | {LABELS[f]} | {VARIANTS[v]} | {cell(g('mean_rank'))} ({count(g('n_queries'))}) | "
                         f"{part('overlap')} | {part('no_overlap')} | {chance(g('n_candidates')[0])} | "
                         f"{cell(g('overlap', 'shortcut_rank'))} / {cell(g('all', 'shortcut_rank'))} |")
    L += ["", "## Figure 7 readings beside their controls", "",
          "(a) mean probability and (b) median vocabulary rank of the right first answer token on reverse "
          "queries; (c) Pearson correlation across facts of the forward and reverse attention scores "
          "q_[M]^T R k_B (mean over layers and heads; MDM, datasets whose reverse prompt repeats B). "
          "Controls: the same weights before finetuning (pretrained only), the random initialisation, "
          "and the finetuned MDM run with a causal mask. Reverse rank (entity) repeated for each.", "",
          "| Dataset | Model | weights | (a) first-token prob | (b) first-token rank | (c) attention corr | "
          "reverse entity rank | positive control |", "|---|---|---|---|---|---|---|---|"]
    for d in tasks:
        for f in fams:
            rs = _rows(result, f)
            for v, label in VARIANTS.items():
                g = lambda path: [_get(r, d, ("readings", v, *path)) for r in rs]  # noqa: E731
                if all(math.isnan(x) for x in g(("first_token", "prob_mean"))):
                    continue
                L.append(f"| {d} | {LABELS[f]} | {label} | {cell(g(('first_token', 'prob_mean')), '.4f')} | "
                         f"{cell(g(('first_token', 'rank_median')), '.0f')} | "
                         f"{cell(g(('attention', 'corr_mean')), '.3f')} | {cell(g(('reverse_rank', 'mean_rank')))} | "
                         f"{cell(g(('positive_control', 'mean_rank')))} |")
    L += ["", "## Setup", "", _setup(result), "", f"Command: `{result.get('command', 'n/a')}`", ""]
    return "\n".join(L)


def _setup(result: dict) -> str:
    cfg, prov = result["config"], result["provenance"]
    sft = cfg.get("finetune_objective", "sft") == "sft"
    stage2 = ("MDM: LLaDA SFT loss (prompt never masked, answer EOS-padded to 32), ARM: next-token loss on the answer"
              if sft else "each model's pretraining loss over prompt + answer (continued pretraining on the forward "
              "statements; not the paper's SFT)")
    git = prov.get("git") or {}  # records made before plumbing.provenance.record
    return (
        f"Models: {cfg['layers']} layers, hidden {cfg['hidden']}, {cfg['heads']} heads, FFN {cfg['ffn']}, RoPE base "
        f"{cfg['rope_theta']:g}, word-level vocabulary of {result['vocab_size']} tokens; one random initialisation "
        f"per seed shared by MDM and ARM. Stage 1: {cfg['pretrain_steps']} AdamW steps (lr {cfg['pretrain_lr']:g}, "
        f"batch {cfg['pretrain_batch']} x {cfg['seq_len']} tokens) on a background corpus of "
        f"{result['corpus_sentences']} generated sentences (every entity name about {cfg['mentions']} times, no "
        f"tested fact, no relation phrase; e.g. \"{result['corpus_example'][0]}\"); MDM: LLaDA's pretraining loss, "
        f"ARM: next-token loss. Stage 2: every weight finetuned on forward facts only, each fact presented "
        f"{cfg['epochs']} times (epochs = that / training phrasings per fact), AdamW lr {cfg['lr']:g}, batch "
        f"{cfg['batch_size']}; {stage2}; exact match at {cfg['evals']} evenly spaced evaluations (LLaDA sampler, "
        f"32 steps / greedy), raw prompts. Data: Parent-Child and T-REx-style first {cfg['n_pairs']} facts, "
        f"Person-Description its 10 people (Appendix D).\n\n"
        f"Wall time {result['wall_time_s'] / 60:.1f} min with {result['workers']} worker process(es) of "
        f"{result['torch_threads_per_worker']} torch thread(s) on {result['cpu_count']} cores (1-minute load average "
        f"{result['load_average_1min']['start']} -> {result['load_average_1min']['end']}). Provenance: commit "
        f"{commit_of(prov)} (uncommitted changes: {prov.get('dirty', git.get('dirty'))}), {prov.get('libraries')}, "
        f"{prov.get('platform')}, processor {prov.get('cpu', prov.get('processor'))}, data sha256 {prov.get('data')}.")


def plot(result: dict, out: str | Path) -> None:
    """Reverse entity rank / chance and positive control / chance per dataset, one dot per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"])
    fams = [f for f in result["config"]["families"] if _rows(result, f)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = {"llada": "tab:blue", "llama": "tab:orange"}
    for ax, (key, title) in zip(axes[:2], (("reverse_rank", "reverse queries"),
                                           ("positive_control", "positive control (statement, entity masked)"))):
        for j, f in enumerate(fams):
            for i, d in enumerate(tasks):
                ys = [_get(r, d, ("readings", "trained", key, "mean_rank")) /
                      _get(r, d, ("readings", "trained", key, "chance_rank")) for r in _rows(result, f)]
                ax.scatter([i + 0.15 * (j - 0.5) * 2] * len(ys), ys, color=colors[f], s=14,
                           label=LABELS[f] if i == 0 else None)
        ax.axhline(1, color="gray", ls="--", lw=1)
        ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
        ax.set_ylabel("mean rank / chance (1 = chance, lower = better)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[2]
    variants = [v for v in VARIANTS if any(not math.isnan(_get(r, d, ("readings", v, "attention", "corr_mean")))
                                           for r in _rows(result, "llada") for d in tasks)]
    for i, d in enumerate(tasks):
        for j, v in enumerate(variants):
            ys = [_get(r, d, ("readings", v, "attention", "corr_mean")) for r in _rows(result, "llada")]
            ax.scatter([i + 0.12 * (j - len(variants) / 2)] * len(ys), ys, s=12, color=f"C{j}",
                       label=VARIANTS[v] if i == 0 else None)
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_title("Fig. 7 (c): fwd/rev attention corr. (MDM)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
