"""Short full collections for a long-lived server process (daphne).

CPython's full collection scans every object the collector tracks, and the whole process waits
meanwhile. A daphne process holds hundreds of sockets of a few hundred objects each, alive as
long as the socket: at 500 open sockets a full collection took 50-110 ms, every few seconds
while sockets were being opened, and those pauses were the slowest chat starts
(docs/benchmarks.md, "Queue depth").

So what survives a full collection is frozen (``gc.freeze``): the next full collections scan only
what came after it. A frozen object is still freed as soon as nothing refers to it; only a
reference cycle among frozen objects waits. Once the frozen set has grown to ``growth`` times
its size after the last full scan, everything is thawed, and the next full collection scans and
frees it all, then freezes its survivors again: the garbage kept back stays within a multiple of
the live heap, and the long scans come once per doubling of it instead of every few seconds.
``gc.get_referrers`` does not see frozen referrers: nothing a reflib server runs uses it (the test
process, where Hypothesis does, sets the policy aside: tests/conftest.py).
"""

from __future__ import annotations

import gc
from typing import Any

# The oldest generation: a collection of it is a full one.
OLDEST = 2


class FreezeSurvivors:
    """A ``gc.callbacks`` entry that freezes the survivors of each full collection.

    ``gc.get_freeze_count`` walks the whole frozen set (tens of milliseconds at 300,000
    objects), so the size is kept here instead: what was frozen alive at the last complete
    scan, plus what each later collection froze. Frozen objects freed since are not subtracted,
    so the thaw comes early rather than late.
    """

    def __init__(self, *, growth: float = 2.0, alive: int) -> None:
        self.growth = growth
        # Frozen and known alive: at start-up, or after a collection that scanned everything.
        self.alive = alive
        self.frozen = alive
        self.thawed = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info["generation"] != OLDEST:
            return
        if not self.thawed and self.frozen > self.growth * max(self.alive, 1):
            # These survivors go back with the rest: the next full collection scans it all.
            gc.unfreeze()
            self.thawed = True
            return
        # A full collection leaves its survivors, and nothing else, unfrozen.
        survivors = len(gc.get_objects())
        gc.freeze()
        if self.thawed:
            self.alive = self.frozen = survivors
            self.thawed = False
        else:
            self.frozen += survivors


def install(*, growth: float = 2.0) -> FreezeSurvivors:
    """Freeze what exists now (start-up's modules, settings, routes), and the survivors of
    every full collection from now on."""
    alive = len(gc.get_objects())
    gc.freeze()
    policy = FreezeSurvivors(growth=growth, alive=alive)
    gc.callbacks.append(policy)
    return policy
