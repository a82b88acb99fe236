"""py-spy on a daphne process: record while a benchmark phase runs, then say where the time went.

The recording is py-spy's ``raw`` format (one collapsed stack and its sample count per line:
flamegraph.pl and https://www.speedscope.app read it). Only samples in which the sampled thread
holds the interpreter lock are kept (``--gil``), so the samples divided by the rate are the
seconds of Python work, whichever thread did it; the process is not paused to sample
(``--nonblocking``), which keeps the measured phase close to an unprofiled one.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE = 100


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start recording ``pid`` for ``seconds`` into ``output``; wait for the returned process."""
    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} is missing: pip install -r requirements/dev.txt")
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(math.ceil(seconds))]
    command += ["--rate", str(RATE), "--format", "raw", "--gil", "--nonblocking"]
    command += ["--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def self_samples_by_package(recording: Path) -> Counter[str]:
    """Samples by the top-level package (or stdlib module) of the innermost frame:
    ``JSONEncoder.iterencode (json/encoder.py:258)`` counts for ``json``, and
    ``ABCMeta.__instancecheck__ (<frozen abc>:119)`` for ``abc``."""
    samples: Counter[str] = Counter()
    for line in recording.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        where = leaf[leaf.rfind("(") + 1 : leaf.rfind(":")].removeprefix("<frozen ")
        package = where.split("/", 1)[0].removesuffix(".py").removesuffix(">")
        samples[package or "(no Python frame)"] += int(count)
    return samples


def breakdown(recording: Path, messages: int, top: int = 12) -> list[str]:
    """Lines of a table: per package, its share of the samples and its milliseconds of
    interpreter time per message."""
    samples = self_samples_by_package(recording)
    total = sum(samples.values())
    if not total or not messages:
        return [f"no samples in {recording}"]
    lines = [f"{'package':24} {'share':>6} {'ms/msg':>7}"]
    shown = samples.most_common(top)
    rest = total - sum(count for _, count in shown)
    for package, count in [*shown, ("(the rest)", rest)]:
        ms = 1000 * count / RATE / messages
        lines.append(f"{package:24} {100 * count / total:5.1f}% {ms:7.2f}")
    lines.append(f"{'total':24} {100.0:5.1f}% {1000 * total / RATE / messages:7.2f}")
    return lines
