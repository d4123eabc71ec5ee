"""Id generators: the determinism seam for tests (see `tripwire.testing`).

Ids need uniqueness, not secrecy, so they come from `random.getrandbits`, which is
several times cheaper than uuid4 and is reseeded by CPython in forked children.
"""

from __future__ import annotations

from random import getrandbits
from typing import Callable


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
