"""Data of the miniature: the three datasets shrunk, a word-level tokenizer, and the background corpus.

Stage 1 (pretraining) reads only `background_corpus`: generated sentences in which every entity
name of the later facts occurs as ordinary text, many times, in both subject and object position,
next to random other names, in templates that share no relation phrase with the tested facts. So
pretraining teaches the models to read and emit every name, as a pretrained LLM can, and teaches
no fact: `check_no_leak` refuses a corpus in which a tested pair co-occurs or a relation phrase
appears (tests/test_largescale_mini_corpus.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from largescale_torch.data import Example, build_task

SPECIALS = ("<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>", "<|unk|>")
BOS, EOS, MASK, UNK = "<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|unk|>"
# (dataset, training direction) of the miniature; one direction per dataset of Table 1.
TASKS = (("parent_child", "p2c"), ("person_description", "p2d"), ("trex", "forward"))
TASK_NAMES = tuple(d for d, _ in TASKS)
N_TREX_PHRASINGS = 5  # phrasings per pair and direction in data.trex

# Background templates: daily-life sentences about one or two names. None uses a word of the
# tested relations (child, parent, capital, founder, author, born, director, headquarters, ...).
ONE_NAME = (
    "{a} walked to the market .", "I met {a} yesterday .", "{a} likes green tea .",
    "We saw {a} at the station .", "Everyone waved at {a} .", "{a} sat by the window .",
    "The letter was signed by {a} .", "A neighbour called {a} twice .", "{a} laughed at the joke .",
    "Nobody expected {a} so early .",
)
TWO_NAMES = (
    "{a} and {b} went to the lake together .", "{a} waved at {b} .", "{b} lent a pen to {a} .",
    "Yesterday {a} played chess with {b} .", "{a} sent a postcard to {b} .", "{b} and {a} shared an umbrella .",
    "The photo shows {a} next to {b} .", "{a} met {b} on the train .",
)


@dataclass(frozen=True)
class MiniTask:
    """One dataset of the miniature: the examples `training.run` will use, and their entity pairs.

    `pairs[i] = (reverse answer, forward answer)` of fact i, e.g. (parent, child) for P2C;
    `train_n` / `eval_n` are `TrainConfig.max_train_examples` / `max_eval_examples` (None: all).
    """

    dataset: str
    direction: str
    train: tuple[Example, ...]
    forward: tuple[Example, ...]
    reverse: tuple[Example, ...]
    pairs: tuple[tuple[str, str], ...]
    names: tuple[str, ...]  # every entity name that the background corpus must teach
    train_n: int | None
    eval_n: int | None


def mini_task(dataset: str, direction: str, n_pairs: int, data_dir: str | None = None) -> MiniTask:
    """The first `n_pairs` facts of a dataset (Person-Description: all 10 people, 30 phrasings each)."""
    task = build_task(dataset, direction, data_dir=data_dir)
    if dataset == "person_description":
        train_n = eval_n = None
        pairs = tuple(dict.fromkeys((e.entity, e.target) for e in task.reverse))
        pairs = tuple((name, "") for name in dict.fromkeys(p for p, _ in pairs))  # descriptions are not names
    else:
        k = N_TREX_PHRASINGS if dataset == "trex" else 1
        train_n = eval_n = n_pairs * k
        rev = task.reverse[:eval_n]
        pairs = tuple(dict.fromkeys((r.target, f.target) for r, f in zip(rev, task.forward[:eval_n])))
    train, forward, reverse = (tuple(x[:n]) for x, n in ((task.train, train_n), (task.forward, eval_n),
                                                          (task.reverse, eval_n)))
    names = tuple(dict.fromkeys(n for p in pairs for n in p if n))
    return MiniTask(dataset, direction, train, forward, reverse, pairs, names, train_n, eval_n)


def relation_phrases(task: MiniTask) -> set[str]:
    """Each prompt with its entity names cut out: the words that state the relation."""
    out = set()
    for e in (*task.train, *task.reverse):
        text = e.prompt
        for name in sorted(task.names, key=len, reverse=True):
            text = text.replace(name, "|")
        out.update(p.strip(" ,.") for p in text.split("|") if len(p.strip(" ,.").split()) >= 2)
    return out


def background_corpus(names: list[str], forbidden: set[frozenset], mentions: int, seed: int) -> list[str]:
    """Sentences that mention every name about `mentions` times, half of them beside another name
    (alternately before and after it).

    Deterministic in `seed`. A two-name sentence never pairs the two names of a tested fact
    (`forbidden`), so the corpus states no fact, not even a co-occurrence.
    """
    rng = np.random.default_rng(seed)
    out = []
    for r in range(mentions // 2):
        for a in names:
            out.append(ONE_NAME[rng.integers(len(ONE_NAME))].format(a=a))
            while True:
                b = names[rng.integers(len(names))]
                if b != a and frozenset((a, b)) not in forbidden:
                    break
            t = TWO_NAMES[rng.integers(len(TWO_NAMES))]
            a_first = (r % 2 == 0) == (t.index("{a}") < t.index("{b}"))  # alternate: a before, then after b
            out.append(t.format(a=a, b=b) if a_first else t.format(a=b, b=a))
    rng.shuffle(out)
    return out


def check_no_leak(corpus: list[str], tasks: list[MiniTask]) -> None:
    """ValueError if a tested pair co-occurs in a sentence or a relation phrase appears in the corpus."""
    for task in tasks:
        for a, b in task.pairs:
            if a and b and any(a in s and b in s for s in corpus):
                raise ValueError(f"background corpus states the fact ({a}, {b})")
        for phrase in relation_phrases(task):
            if any(phrase in s for s in corpus):
                raise ValueError(f"background corpus contains the relation phrase {phrase!r}")


_SUFFIX = re.compile(r"^(.+?)((?:'s)?[.,;:!?\"')]*)$")


def word_pieces(word: str) -> list[str]:
    """A whitespace word split into its base and a trailing punctuation / possessive piece ("##'s")."""
    m = _SUFFIX.match(word)
    if not m or not m.group(2):
        return [word]
    return [m.group(1), "##" + m.group(2)]


def word_tokenizer(texts: list[str]):
    """Word-level tokenizer over `texts` (+ LLaDA's special tokens), BOS prepended.

    A WordPiece model over whole words whose only sub-word pieces are trailing punctuation and
    "'s": "Twomey's" -> "Twomey", "##'s", so a name is the same token in "Twomey's child is",
    in "... is Anne Twomey" and in the background corpus, as it would be under a BPE vocabulary;
    the decoder glues "##" pieces back, so answers decode to their exact text.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({p for t in texts for w in t.split() for p in word_pieces(w)})
    vocab = {tok: i for i, tok in enumerate((*SPECIALS, *words))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token=UNK, max_input_chars_per_word=200))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS,
                                   mask_token=MASK, unk_token=UNK, additional_special_tokens=["<|eot_id|>"])


def all_texts(tasks: list[MiniTask], corpus: list[str]) -> list[str]:
    """Every text either stage can show a model: the tokenizer's vocabulary covers exactly these."""
    return [*corpus, *(f"{e.prompt} {e.target}" for t in tasks for e in (*t.train, *t.forward, *t.reverse))]
