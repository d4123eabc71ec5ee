"""Watching a model's streamed answer as the caller iterates it.

`watch` / `awatch` pass each item of a (sync / async) stream on as it comes and show
it to a `StreamWatcher` first; the watcher hears once how the stream ended: at its
last item, with the exception that broke it, or closed early by the caller. What the
watcher does is the integration's; a failure of its own never reaches the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from tripwire.types import ExcInfo


class StreamWatcher:
    """What a watched stream reports to; subclasses fold the items and end the span."""

    __slots__ = ()

    def item(self, item: Any, /) -> None:
        """One item, before the caller gets it."""

    def finish(self, exc_info: Optional[ExcInfo] = None) -> None:
        """The stream ended: after its last item (None) or with `exc_info`."""

    def closed(self) -> None:
        """The caller closed the stream before its end: by default, an end."""
        self.finish()

    def failed(self, exc_info: ExcInfo) -> None:
        """Closing the stream failed: by default, an end with `exc_info`."""
        self.finish(exc_info)

    # Around `watch`'s iteration (the watcher is its own context manager: one object
    # less per stream): the item handler, then how the iteration ended.
    def __enter__(self) -> Callable[[Any], None]:
        return self.item

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        try:
            if ty is None:
                self.finish()
            elif issubclass(ty, GeneratorExit):
                self.closed()
            else:
                self.finish((ty, value, tb))
        except Exception:  # instrumentation must not break the stream
            pass


class EndsOnce(StreamWatcher):
    """A watcher of one call's stream that may hear of the end twice (the stream's
    `close()` is patched too): `ended` runs the first time only."""

    __slots__ = ("call", "done")

    def __init__(self, call: Any) -> None:
        self.call = call
        self.done = False

    def finish(self, exc_info: Optional[ExcInfo] = None) -> None:
        if self.done:
            return
        self.done = True
        self.ended(exc_info)

    def ended(self, exc_info: Optional[ExcInfo]) -> None:
        """The stream's end, as `finish` (once)."""


def watch(inner: Iterable[Any], watcher: StreamWatcher) -> Iterator[Any]:
    """`inner`'s items, each shown to `watcher` first; its end reported to `watcher`."""
    with watcher as on_item:
        for item in inner:
            try:
                on_item(item)
            except Exception:  # instrumentation must not break the stream
                pass
            yield item


async def awatch(inner: AsyncIterable[Any], watcher: StreamWatcher) -> AsyncIterator[Any]:
    """`watch` for an async stream."""
    with watcher as on_item:
        async for item in inner:
            try:
                on_item(item)
            except Exception:  # instrumentation must not break the stream
                pass
            yield item


__all__ = ["EndsOnce", "StreamWatcher", "awatch", "watch"]
