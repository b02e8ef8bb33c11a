"""Numerical checks of the paper's theory (Section 4.2, Appendix C)."""
