"""What toy_jax, largescale_torch, theory and scripts/ share: command-line errors and exit codes
(`cli`), provenance of a result (`provenance`), atomic writes (`io`), mean +- s.e.m. (`stats`).
Standard library and numpy only: every package imports it cheaply."""
