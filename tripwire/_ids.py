"""Id generators: the determinism seam for tests (see `tripwire.testing`).

Ids need uniqueness, not secrecy, so they come from a Mersenne Twister, several times
cheaper than uuid4. It is the SDK's own, never the `random` module's shared one: an
application that calls `random.seed(42)` per request would otherwise get the same
event, trace and span ids each time (duplicates a server drops), and each id would
move the application's own random sequence on. A forked child reseeds it, as CPython
does for the shared one. Sampling draws from it too (`random`).
"""

from __future__ import annotations

import os
from random import Random
from typing import Callable

_rng = Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rng.seed)

getrandbits = _rng.getrandbits
random = _rng.random


def _random_event_id() -> str:
    return "%032x" % getrandbits(128)


def _random_span_id() -> str:
    return "%016x" % getrandbits(64)


class _Ids:
    __slots__ = ("event_id", "span_id", "trace_id")

    def __init__(self) -> None:
        self.event_id: Callable[[], str] = _random_event_id
        self.trace_id: Callable[[], str] = _random_event_id
        self.span_id: Callable[[], str] = _random_span_id

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


ids = _Ids()
