"""reflib.gcpolicy: what survives a full collection is frozen, and thawed once it has grown."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from reflib.gcpolicy import FreezeSurvivors


class Loop:
    """An object in a reference cycle: only a collection that scans it can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy() -> Iterator[FreezeSurvivors]:
    """A policy that knows of one object alive, alone in ``gc.callbacks`` (the one the test
    process installed with reflib.asgi is set aside); everything is thawed afterwards."""
    others = [callback for callback in gc.callbacks if isinstance(callback, FreezeSurvivors)]
    for callback in others:
        gc.callbacks.remove(callback)
    policy = FreezeSurvivors(growth=2.0, alive=1)
    gc.callbacks.append(policy)
    yield policy
    gc.callbacks.remove(policy)
    gc.unfreeze()
    gc.callbacks.extend(others)


def scanned(thing: object) -> bool:
    """Whether the collector still scans ``thing`` (frozen objects are not listed)."""
    return any(tracked is thing for tracked in gc.get_objects())


def test_what_survives_a_full_collection_is_frozen(policy: FreezeSurvivors) -> None:
    loop = Loop()

    gc.collect()

    assert gc.is_tracked(loop)
    assert not scanned(loop)


def test_a_young_collection_freezes_nothing(policy: FreezeSurvivors) -> None:
    gc.collect()
    loop = Loop()

    gc.collect(0)

    assert scanned(loop)


def test_a_frozen_cycle_waits_for_the_thaw_and_then_is_freed(policy: FreezeSurvivors) -> None:
    loop = Loop()
    gone = weakref.ref(loop)
    gc.collect()  # frozen, with everything else: far more than the one object known alive
    del loop

    gc.collect()  # does not scan the frozen cycle; the frozen set has grown: all is thawed
    kept = gone() is not None
    gc.collect()  # scans everything

    assert kept
    assert gone() is None
    assert policy.alive > 1
