"""What the toy entry points add to `plumbing.cli`: `--help` that shows every preset's default."""
from __future__ import annotations

import argparse

def _fmt_value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def show_defaults(parser: argparse.ArgumentParser, presets: dict | None = None,
                  fields=None, sections: tuple[str, ...] = ("model", "train", "eval")
                  ) -> argparse.ArgumentParser:
    """Make `--help` show every default.

    A flag in `fields` (dests; default: all) whose default is None and whose dest is a field of
    a config section (e.g. `cfg.train.batch_size` for `--batch-size`) gets "(paper: 256,
    quick: 128)" from `presets` ({preset name: RunConfig}), and the epilog gets a table of those
    values per preset; any other flag with a default gets "(default: X)". Help that already
    names its default is left as it is.
    """
    rows = []
    for a in parser._actions:
        if a.help == argparse.SUPPRESS or not a.option_strings:
            continue
        vals = {}
        if a.default is None and presets and (fields is None or a.dest in fields):
            for name, cfg in presets.items():
                for s in sections:
                    sec = getattr(cfg, s, None)
                    if sec is not None and hasattr(sec, a.dest):
                        vals[name] = _fmt_value(getattr(sec, a.dest))
                        break
        if len(vals) != len(presets or {}) or not vals:
            vals = {}
        else:
            rows.append((a.option_strings[0], list(vals.values())))
        if "default" in (a.help or "").lower():
            continue  # the help names its default itself
        if vals:
            note = (f"default: {next(iter(vals.values()))}" if len(set(vals.values())) == 1
                    else ", ".join(f"{n}: {v}" for n, v in vals.items()))
        elif a.default not in (None, False, argparse.SUPPRESS):
            note = f"default: {_fmt_value(a.default)}"
        else:
            continue
        a.help = f"{a.help} ({note})" if a.help else f"({note})"
    if rows:
        names = list(presets)
        w0 = max(len(r[0]) for r in rows) + 2
        ws = [max([len(n)] + [len(r[1][i]) for r in rows]) + 2 for i, n in enumerate(names)]
        row = lambda first, cells: ("  " + first.ljust(w0)
                                    + "".join(c.ljust(w) for c, w in zip(cells, ws))).rstrip()
        lines = ["preset values (--preset picks a column; each flag overrides one value):",
                 row("flag", names)] + [row(f, vs) for f, vs in rows]
        table = "\n".join(lines)
        parser.epilog = f"{parser.epilog}\n\n{table}" if parser.epilog else table
    return parser
