"""Reversal datasets: Section 3 / Appendix D's Parent-Child, Person-Description and T-REx-style,
and file datasets (your own forward/reverse pairs, LLaDA's reversal poems).

`types` holds the containers, each builder module imports only `types` (and `source`), and
`registry` maps a `--dataset` value to its builder.
"""
from largescale_torch.data.registry import build_task
from largescale_torch.data.types import Example, Task

__all__ = ["Example", "Task", "build_task"]
