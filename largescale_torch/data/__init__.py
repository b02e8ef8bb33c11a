"""Reversal datasets of Section 3 / Appendix D: Parent-Child, Person-Description, T-REx-style."""
from largescale_torch.data.common import Example, Task, build_task

__all__ = ["Example", "Task", "build_task"]
