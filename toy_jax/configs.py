"""Frozen configs of the toy experiment and the `paper` / `quick` presets.

`paper` is Table 8 of the paper (Appendix E.1): batch 256, lr 3e-4, clipping 1.0, weight decay
0, dropout 0.02, 1,000 warm-up steps, hidden 256, 1 head, 3,000 steps, EMA decay 0.9999.
A run trains one or several model variants (`ModelSpec`): the MDM is full attention + the
L_MDM objective, the ARM is a causal mask + next-token cross-entropy; everything else is shared.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from toy_jax.vocab import N_TARGETS

POS_CHOICES = ("rope", "learned", "none")
INIT_CHOICES = ("radd", "standard")
EMBED_INIT_CHOICES = ("radd", "normal", "gpt2")  # U(+-1/sqrt d), N(0, 1), N(0, 0.02)
T_SAMPLER_CHOICES = ("iid", "stratified")
PRECISION_CHOICES = ("fp32", "bf16")  # compute dtype; weights stay float32
ATTENTION_CHOICES = ("full", "causal")
OBJECTIVE_CHOICES = ("mdm", "arm")
LOSS_CHOICES = ("t_dce", "lambda_dce")  # the MDM objective's estimator (losses.MDM_LOSSES)
MODEL_CHOICES = ("mdm", "arm", "both")
PRESET_CHOICES = ("paper", "quick")
DEFAULT_ATTENTION = {"mdm": "full", "arm": "causal"}


def _build(cls, d: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return cls(**d)


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _choice(name, v, choices):
    if v not in choices:
        raise ValueError(f"{name} must be one of {'|'.join(choices)}, got {v!r}")


@dataclass(frozen=True)
class ModelConfig:
    """One pre-norm Transformer block; `attention` is the only MDM/ARM architectural switch."""

    d_model: int = 256
    n_heads: int = 1
    mlp_ratio: int = 4
    dropout: float = 0.02
    pos: str = "rope"  # rope | learned | none
    rope_base: float = 10000.0
    # GPT-2's init by default: RADD's leaves some seeds stuck on the pad plateau at the paper
    # preset (2 of 8 at L = 20); RESULTS.md, "Which seeds collapse, and why", has the numbers.
    init: str = "standard"  # standard | radd
    attention: str = "full"  # full | causal
    seq_len: int = 20  # needed by learned positions and RoPE tables
    embed_init: str | None = None  # radd | normal | gpt2; None = what `init` says
    ln_bias: float | None = None  # initial bias of every LayerNorm; None = what `init` says
    precision: str = "fp32"  # fp32 | bf16 (bf16 matmuls, LayerNorm/softmax in fp32)
    # output classes; None = the toy's N_TARGETS (pad and 52 letters). A larger head (e.g.
    # GPT-2's 50,257, as RADD and GPT-2 predict) adds outputs that never occur in the data.
    vocab_size: int | None = None

    def __post_init__(self):
        _positive_int("d_model", self.d_model)
        _positive_int("n_heads", self.n_heads)
        _positive_int("mlp_ratio", self.mlp_ratio)
        _positive_int("seq_len", self.seq_len)
        if self.seq_len < 2:
            raise ValueError(f"seq_len (L) must be >= 2, got {self.seq_len}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.pos == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError("RoPE needs an even head dimension (d_model / n_heads)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.rope_base > 1.0:
            raise ValueError(f"rope_base must be > 1, got {self.rope_base}")
        _choice("pos", self.pos, POS_CHOICES)
        _choice("init", self.init, INIT_CHOICES)
        _choice("attention", self.attention, ATTENTION_CHOICES)
        _choice("precision", self.precision, PRECISION_CHOICES)
        if self.embed_init is not None:
            _choice("embed_init", self.embed_init, EMBED_INIT_CHOICES)
        if self.vocab_size is not None:
            if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int) \
                    or self.vocab_size < N_TARGETS:
                raise ValueError(f"vocab_size must be an integer >= {N_TARGETS} (the toy's "
                                 f"outputs), got {self.vocab_size!r}")
        if self.ln_bias is not None and (isinstance(self.ln_bias, bool) or not isinstance(
                self.ln_bias, (int, float)) or not math.isfinite(self.ln_bias)):
            raise ValueError(f"ln_bias must be a finite number, got {self.ln_bias!r}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_outputs(self) -> int:
        """Width of the output layer: `vocab_size`, else the toy's N_TARGETS."""
        return self.vocab_size or N_TARGETS

    @property
    def embed_init_used(self) -> str:
        """The embedding initialiser in effect: `embed_init`, else RADD's U(+-1/sqrt d) under
        init='radd' and GPT-2's N(0, 0.02) under init='standard'."""
        if self.embed_init is not None:
            return self.embed_init
        return "radd" if self.init == "radd" else "gpt2"

    @property
    def ln_bias_used(self) -> float:
        """The initial LayerNorm bias in effect: `ln_bias`, else 1 (RADD) or 0 (GPT-2)."""
        if self.ln_bias is not None:
            return float(self.ln_bias)
        return 1.0 if self.init == "radd" else 0.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (Table 8) and logging; `objective` is the only MDM/ARM loss switch."""

    objective: str = "mdm"  # mdm | arm
    loss: str = "t_dce"  # MDM objective: t_dce (t ~ U, weight 1/t) | lambda_dce (k ~ U{1..L}, L/k)
    steps: int = 3000
    batch_size: int = 256
    lr: float = 3e-4
    warmup_steps: int = 1000
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-8
    ema_decay: float = 0.9999
    t_eps: float = 1e-3  # t = t_eps + (1 - t_eps) u keeps the 1/t weight <= 1/t_eps
    t_sampler: str = "iid"  # iid | stratified (RADD's `vdm`: one u0 per batch, u_b = u0 + b/B)
    track_every: int = 10  # 0 disables in-loop tracking; then metrics every `log_every`
    log_every: int = 50
    ckpt_every: int = 500

    def __post_init__(self):
        _choice("objective", self.objective, OBJECTIVE_CHOICES)
        _choice("t_sampler", self.t_sampler, T_SAMPLER_CHOICES)
        _choice("loss", self.loss, LOSS_CHOICES)
        _positive_int("steps", self.steps)
        _positive_int("batch_size", self.batch_size)
        _positive_int("log_every", self.log_every)
        _positive_int("ckpt_every", self.ckpt_every)
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if not isinstance(self.track_every, int) or self.track_every < 0:
            raise ValueError(f"track_every must be an integer >= 0, got {self.track_every!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 < self.t_eps < 1.0:
            raise ValueError(f"t_eps must be in (0, 1), got {self.t_eps}")

    @property
    def chunk(self) -> int:
        """Steps per jitted chunk: the host sees metrics once per chunk."""
        return self.track_every if self.track_every > 0 else self.log_every


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation (Appendix E.2): top-k sampling with k = 3 and a fixed evaluation seed."""

    top_k: int = 3
    eval_seed: int = 1234
    batch_size: int = 0  # 0 = all placements of one set in one batch

    def __post_init__(self):
        _positive_int("top_k", self.top_k)
        if not isinstance(self.batch_size, int) or self.batch_size < 0:
            raise ValueError(f"eval batch_size must be an integer >= 0, got {self.batch_size!r}")


@dataclass(frozen=True)
class ModelSpec:
    """A trained variant: its name in results, attention mask and objective."""

    name: str
    attention: str
    objective: str
    pos: str | None = None  # this model's positions; None = the run's `ModelConfig.pos`
    steps: int | None = None  # this model's training steps; None = the run's `TrainConfig.steps`

    def __post_init__(self):
        _choice("attention", self.attention, ATTENTION_CHOICES)
        _choice("objective", self.objective, OBJECTIVE_CHOICES)
        if self.pos is not None:
            _choice("pos", self.pos, POS_CHOICES)
        if self.steps is not None:
            _positive_int("steps", self.steps)
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"model name must be alphanumeric/underscore, got {self.name!r}")


def model_spec(objective: str, attention: str | None = None, pos: str | None = None,
               steps: int | None = None) -> ModelSpec:
    """'mdm' = full + mdm, 'arm' = causal + arm; a non-default mask is named e.g. 'mdm_causal'.
    `pos` / `steps` set this model's positions / training steps (None: the run's)."""
    _choice("objective", objective, OBJECTIVE_CHOICES)
    attention = attention or DEFAULT_ATTENTION[objective]
    name = objective if attention == DEFAULT_ATTENTION[objective] else f"{objective}_{attention}"
    return ModelSpec(name=name, attention=attention, objective=objective, pos=pos, steps=steps)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run directory needs to rebuild its models (saved as config.json)."""

    L: int = 20
    preset: str = "paper"
    models: tuple[ModelSpec, ...] = (ModelSpec("mdm", "full", "mdm"),
                                     ModelSpec("arm", "causal", "arm"))
    seeds: tuple[int, ...] = (0,)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        if not isinstance(self.L, int) or self.L < 2:
            raise ValueError(f"L must be an integer >= 2, got {self.L!r}")
        _choice("preset", self.preset, PRESET_CHOICES)
        if self.model.seq_len != self.L:
            raise ValueError(f"model.seq_len={self.model.seq_len} differs from L={self.L}")
        if not self.models:
            raise ValueError("at least one model is needed")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate model names {names}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be non-empty and distinct, got {self.seeds}")
        if any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be integers >= 0, got {self.seeds}")

    def spec(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise ValueError(f"no model {name!r} in this run (has {[m.name for m in self.models]})")

    def configs_for(self, name: str) -> tuple[ModelConfig, TrainConfig]:
        """The model and train config of one variant (its mask, positions, objective and steps
        filled in)."""
        s = self.spec(name)
        pos = {"pos": s.pos} if s.pos is not None else {}
        steps = {"steps": s.steps} if s.steps is not None else {}
        return (dataclasses.replace(self.model, attention=s.attention, **pos),
                dataclasses.replace(self.train, objective=s.objective, **steps))

    def steps_of(self, name: str) -> int:
        """The training steps of one variant."""
        return self.configs_for(name)[1].steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(
            L=d["L"], preset=d["preset"], seeds=tuple(d["seeds"]),
            models=tuple(ModelSpec(**m) for m in d["models"]),
            model=_build(ModelConfig, d["model"]), train=_build(TrainConfig, d["train"]),
            eval=_build(EvalConfig, d["eval"]))


PRESETS = {
    # Table 8 (Appendix E.1).
    "paper": dict(model=dict(d_model=256, n_heads=1, dropout=0.02),
                  train=dict(steps=3000, batch_size=256, lr=3e-4, warmup_steps=1000,
                             grad_clip=1.0, weight_decay=0.0, ema_decay=0.9999)),
    # Small and short enough for both models in < 3 min on 2 CPU cores (see README).
    # The ARM gets learned absolute positions, as GPT-2 (the paper's ARM) has: the next-token
    # rule of the task, p(uppercase at p | no uppercase yet) = 1 / (L - p), depends on the
    # absolute position p, which a causal RoPE decoder of this size does not recover in 1,500
    # steps (forward completion stalls at 83-86 % for L >= 20; RESULTS.md, "Table 2").
    # The MDM trains 3,000 steps: at 1,500 its forward infill is still rising at L >= 30 and
    # some seeds end below 95 % forward completion (same section).
    "quick": dict(model=dict(d_model=64, n_heads=1, dropout=0.02),
                  train=dict(steps=1500, batch_size=128, lr=1e-3, warmup_steps=150,
                             grad_clip=1.0, weight_decay=0.0, ema_decay=0.9999,
                             track_every=50, ckpt_every=500),
                  pos_by_model=dict(arm="learned"), steps_by_model=dict(mdm=3000)),
}


def make_config(L: int = 20, preset: str = "paper", model: str = "both",
                seeds=(0,), attention: str | None = None, objective: str | None = None,
                model_overrides: dict | None = None, train_overrides: dict | None = None,
                eval_overrides: dict | None = None) -> RunConfig:
    """A RunConfig from a preset plus overrides (what the CLI builds).

    `model` is mdm | arm | both; `attention` / `objective` override the mask / loss of every
    selected model (model='mdm', attention='causal' and model='arm', objective='mdm' both give
    'mdm_causal', the MDM objective on a causal decoder).
    """
    _choice("preset", preset, PRESET_CHOICES)
    _choice("model", model, MODEL_CHOICES)
    if attention is not None:
        _choice("attention", attention, ATTENTION_CHOICES)
    if objective is not None:
        _choice("objective", objective, OBJECTIVE_CHOICES)
    if not isinstance(L, int) or L < 2:
        raise ValueError(f"L must be an integer >= 2, got {L!r}")
    names = ("mdm", "arm") if model == "both" else (model,)
    p = PRESETS[preset]
    # `model` picks the architecture; --attention / --objective override mask / loss; an
    # explicit positions override applies to every model, else the preset's per-model choice
    # (an explicit --steps likewise replaces the preset's per-model steps)
    pos_by_model = {} if "pos" in (model_overrides or {}) else p.get("pos_by_model", {})
    steps_by_model = {} if "steps" in (train_overrides or {}) else p.get("steps_by_model", {})
    specs = tuple(model_spec(objective or n, attention or DEFAULT_ATTENTION[n],
                             pos_by_model.get(n), steps_by_model.get(n)) for n in names)
    mcfg = _build(ModelConfig, {**p["model"], **(model_overrides or {}), "seq_len": L})
    tcfg = _build(TrainConfig, {**p["train"], **(train_overrides or {})})
    ecfg = _build(EvalConfig, dict(eval_overrides or {}))
    return RunConfig(L=L, preset=preset, models=specs, seeds=tuple(int(s) for s in seeds),
                     model=mcfg, train=tcfg, eval=ecfg)
