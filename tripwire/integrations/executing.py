"""Names each Python frame of an error event by its qualified name (``Class.method``).

The `executing` package finds, from a traceback entry, the code object's place in the
source; its qualified name replaces the plain ``co_name`` in the frame's ``function``
(``<module>`` and frames without source keep theirs). `executing` is imported when the
integration is set up, not when tripwire is.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable

from tripwire.event.frames import _collect_traceback
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import capturing_client

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

# (traceback entry, its frame dict in the event) -> nothing; edits the frame dict.
FrameVisitor = Callable[[TracebackType, "dict[str, Any]"], None]


def _exceptions(root: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from `root`: chains and exception-group members."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        todo.extend(
            linked
            for linked in (exc.__cause__, exc.__context__)
            if isinstance(linked, BaseException)
        )
        members = getattr(exc, "exceptions", None)
        if isinstance(members, tuple):
            todo.extend(m for m in members if isinstance(m, BaseException))


def _visible_entries(
    tb: TracebackType | None, opts: Any
) -> list[tuple[TracebackType, str | None, int | None]]:
    """The traceback entries that became event frames: (entry, abs_path, lineno)."""
    by_frame: dict[int, TracebackType] = {}
    entry: TracebackType | None = tb
    while entry is not None:
        by_frame[id(entry.tb_frame)] = entry
        entry = entry.tb_next
    out: list[tuple[TracebackType, str | None, int | None]] = []
    for frame, lineno, static in _collect_traceback(tb, opts):
        found = by_frame.get(id(frame))
        if found is not None:
            out.append((found, static[3], lineno))
    return out


def visit_exception_frames(event: EventDict, hint: Hint, visit: FrameVisitor) -> None:
    """Call `visit` for each Python frame of the event's exceptions, with its traceback entry.

    An exception value is paired with the exception whose visible traceback frames
    (file and line) are the last frames of that value's stacktrace.
    """
    exc_info = hint.get("exc_info") if hint else None
    if not exc_info or not isinstance(exc_info[1], BaseException):
        return
    values = (event.get("exception") or {}).get("values")
    if not isinstance(values, list):
        return
    opts = getattr(capturing_client(), "_frame_options", None)
    if opts is None:
        return
    first_tb = exc_info[2] if isinstance(exc_info[2], TracebackType) else None
    candidates: list[list[tuple[TracebackType, str | None, int | None]]] = []
    for exc in _exceptions(exc_info[1]):
        tb = exc.__traceback__ if exc is not exc_info[1] or first_tb is None else first_tb
        entries = _visible_entries(tb, opts)
        if entries:
            candidates.append(entries)
    for value in values:
        frames = (value.get("stacktrace") or {}).get("frames") if isinstance(value, dict) else None
        if not isinstance(frames, list) or not frames:
            continue
        for index, entries in enumerate(candidates):
            if len(entries) > len(frames):
                continue
            tail = frames[len(frames) - len(entries) :]
            if all(
                isinstance(fr, dict) and fr.get("abs_path") == path and fr.get("lineno") == line
                for fr, (_tb, path, line) in zip(tail, entries)
            ):
                del candidates[index]
                for frame_dict, (entry, _path, _line) in zip(tail, entries):
                    try:
                        visit(entry, frame_dict)
                    except Exception:  # one odd frame must not cost the others
                        pass
                break


class ExecutingIntegration(Integration):
    """Replaces each exception frame's ``function`` with its qualified name."""

    identifier = "executing"

    @staticmethod
    def setup_once() -> None:
        """Check that `executing` is importable and register the processor."""
        try:
            import executing
        except ImportError:
            raise DidNotEnable("executing is not installed") from None

        def rename(tb: TracebackType, frame: dict[str, Any]) -> None:
            found = executing.Source.executing(tb)
            tree: object = found.source.tree  # None when the source is not available
            if tree is None:
                return
            name: object = found.code_qualname()
            if isinstance(name, str) and name:
                frame["function"] = name

        def qualify(event: EventDict, hint: Hint) -> EventDict | None:
            if capturing_client().get_integration(ExecutingIntegration) is not None:
                visit_exception_frames(event, hint, rename)
            return event

        add_internal_processor(qualify)
