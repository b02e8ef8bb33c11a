"""The shared plumbing: mean +- s.e.m., atomic writes, provenance records."""
import json
import math

import numpy as np
import pytest

from plumbing import io, provenance
from plumbing.stats import mean_sem


def test_mean_sem():
    m, s = mean_sem([0.1, 0.2, 0.3])
    assert m == pytest.approx(0.2) and s == pytest.approx(0.1 / np.sqrt(3))
    assert mean_sem([0.5]) == (0.5, 0.0)
    m, s = mean_sem([0.5], single=float("nan"))
    assert m == 0.5 and math.isnan(s)
    assert mean_sem([1.0, float("nan"), 3.0], skip_nan=True) == pytest.approx((2.0, 1.0))
    assert all(math.isnan(x) for x in mean_sem([float("nan")], skip_nan=True))
    with pytest.raises(ValueError):
        mean_sem([])


def test_mean_sem_is_numpys_float64_formula():
    """Bit-identical to the numpy expression the toy's results.json has always used."""
    a = np.random.default_rng(0).random(7)
    assert mean_sem(a) == (float(a.mean()), float(a.std(ddof=1) / np.sqrt(7)))


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "r.json"
    io.write_json(p, {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1} and p.read_text().endswith("\n")
    with pytest.raises(RuntimeError):
        with io.atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(p.read_text()) == {"a": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind


def test_provenance_record_and_older_formats():
    rec = provenance.record(command="x")
    assert {"commit", "dirty", "date", "python", "platform", "cpu", "cores", "libraries",
            "command"} <= set(rec)
    json.dumps(rec)
    assert provenance.summary(rec).startswith(f"CPU {rec['cpu']}, ")
    old = {"platform": "CPU Foo, 2 of 2 cores usable; python 3.11", "commit": "abc"}
    assert provenance.summary(old) == old["platform"]
    assert provenance.commit_of(old) == "abc"
    assert provenance.commit_of({"git": {"commit": "def", "dirty": False}}) == "def"
    assert provenance.commit_of({"git_commit": "123"}) == "123"
    assert provenance.commit_of(None) is None
