"""Where a result was made: the code commit, the CPU, the library versions, the date.

Recorded beside every results file that a command writes, so that a number can be traced to
the machine and code that produced it (results depend on the platform: RESULTS.md,
"Cross-machine spread").
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo; the platform's word where that is missing)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (a `taskset` narrows it below os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def library_versions(packages=LIBRARIES) -> dict[str, str]:
    """{package: installed version} for those of `packages` that are installed."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_state() -> dict:
    """{"commit": full hash, "dirty": tracked files changed} of this checkout; None values
    outside a git checkout."""
    repo = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(),
            "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}


def record(libraries=LIBRARIES, **extra) -> dict:
    """The provenance record every result file carries (one format for all packages):

        commit, dirty     the code (`git_state`)
        date              UTC, ISO 8601
        python, platform  interpreter version, `platform.platform()`
        cpu, cores        CPU model; cores usable / present
        libraries         {package: version} of `libraries` that are installed

    `extra` adds fields (a command, a model source, a data checksum, ...)."""
    return {**git_state(), "date": utc_now(), "python": platform.python_version(),
            "platform": platform.platform(), "cpu": cpu_model(),
            "cores": f"{usable_cores()} of {os.cpu_count()}",
            "libraries": library_versions(libraries), **extra}


def summary(prov: dict) -> str:
    """One line naming the machine of a record: "CPU <model>, <k> of <n> cores usable; python
    <v>, <lib> <v>, ...". Older toy records stored this line as "platform"."""
    if "cores" not in prov and prov.get("platform"):
        return prov["platform"]
    k, _, n = str(prov.get("cores", "? of ?")).partition(" of ")
    return (f"CPU {prov.get('cpu', 'unknown')}, {k} of {n} cores usable; python "
            f"{prov.get('python', '?')}, "
            + ", ".join(f"{a} {v}" for a, v in (prov.get("libraries") or {}).items())
            + (f"; XLA_FLAGS={prov['xla_flags']}" if prov.get("xla_flags") else ""))


def commit_of(prov: dict | None) -> str | None:
    """The commit a provenance record names, in this format or the older ones
    ({"git": {"commit": ...}}, {"git_commit": ...})."""
    prov = prov or {}
    git = prov.get("git")
    return (prov.get("commit") or prov.get("git_commit")
            or (git.get("commit") if isinstance(git, dict) else None))


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
