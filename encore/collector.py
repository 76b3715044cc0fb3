"""The cyclic garbage collector's thresholds for the service's long-lived processes.

Almost every object a request or an actor message makes is freed by its reference count as
soon as it is done with; the collector only has to find the rare cycle. With CPython's
default thresholds (700, 10, 10) a busy replica runs a young collection every few hundred
requests, each scanning the objects of every request in flight, and spends a large share of
its CPU there (figures: docs/bench/history.md). The objects made while starting live as
long as the process: they are frozen out of every later scan.
"""

from __future__ import annotations

import gc

# a young collection once 50,000 more container objects are alive than at the last one
THRESHOLDS = (50_000, 20, 20)


def tune_collector() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
