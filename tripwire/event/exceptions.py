"""Exceptions for events: the ``exception.values`` list, chains and exception groups.

The list has the shape and order sentry-sdk 2.x produces: the outermost exception
last. A plain exception is followed down its ``__cause__`` (after ``raise ... from``)
or ``__context__`` chain. When the captured exception is an exception group, the
whole tree (chains and ``exceptions[i]`` members) is walked depth-first and each entry
gets ``mechanism.exception_id`` / ``parent_id`` / ``source`` so the UI can rebuild it.
"""

from __future__ import annotations

import builtins
import sys
from types import TracebackType
from typing import Any, Optional

from tripwire.event.frames import (
    FrameOptions,
    _collect_stack,
    _collect_traceback,
    _merge_full_stack,
    _Raw,
    _render,
)

ExcInfo = tuple[Optional[type[BaseException]], Optional[BaseException], Optional[TracebackType]]

_DEFAULT_MECHANISM: dict[str, Any] = {"type": "generic", "handled": True}


# Exception groups are built in since 3.11. Before that only the `exceptiongroup`
# backport makes them, and only once the application has imported it.
_BUILTIN_GROUP: Any = getattr(builtins, "BaseExceptionGroup", None)


def _is_group(exc: BaseException) -> bool:
    group_type = _BUILTIN_GROUP
    if group_type is None:
        group_type = getattr(sys.modules.get("exceptiongroup"), "BaseExceptionGroup", None)
        if group_type is None:
            return False
    try:
        return isinstance(exc, group_type)
    except Exception:
        return False


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return "<broken repr>"


def _safe_str(value: object) -> str:
    try:
        text = str(value)
    except Exception:  # a failing __str__ (or one returning a non-str)
        return _safe_repr(value)
    return text


def _value_of(exc: BaseException) -> str:
    # As sentry_sdk: a truthy `message` (an ExceptionGroup's, without its
    # " (N sub-exceptions)" suffix; many libraries' errors) or `detail` (HTTP
    # exceptions of Starlette, DRF...) is the value, else str(exc).
    for name in ("message", "detail"):
        try:
            found = getattr(exc, name, None)
            if found:
                return _safe_str(found)
        except Exception:
            pass
    return _safe_str(exc)


def _with_notes(value: str, exc: BaseException) -> str:
    """`value` followed by the exception's string notes (PEP 678), one per line, as sentry_sdk."""
    try:
        notes = getattr(exc, "__notes__", None)  # add_note() exists from 3.11; any may set it
    except Exception:
        return value
    if not isinstance(notes, list) or not notes:
        return value
    kept = [note for note in notes if isinstance(note, str)]
    if not kept:
        return value
    return value + "\n" + "\n".join(kept)


def _add_errno(mechanism: dict[str, Any], exc: BaseException) -> None:
    """`mechanism.meta.errno.number` from the exception's `errno` (OSError and others)."""
    try:
        errno = getattr(exc, "errno", None)
    except Exception:
        return
    if errno is None:
        return
    meta = mechanism.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta.setdefault("errno", {"number": errno})
    mechanism["meta"] = meta


def _type_name(etype: type) -> str:
    name = getattr(etype, "__qualname__", None)
    if not isinstance(name, str):
        name = getattr(etype, "__name__", None)
    return name if isinstance(name, str) else _safe_repr(etype)


def _module_of(etype: type) -> object:
    try:
        module = getattr(etype, "__module__", None)
        return None if module == "builtins" else module
    except Exception:
        return None


class _Builder:
    """Shared state of one `exceptions_from_exc_info` call."""

    __slots__ = ("full_stack", "opts")

    def __init__(self, opts: FrameOptions, full_stack: list[_Raw] | None) -> None:
        self.opts = opts
        self.full_stack = full_stack

    def single(
        self,
        etype: type,
        exc: BaseException,
        tb: TracebackType | None,
        mechanism: dict[str, Any],
        group: bool,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "mechanism": mechanism,
            "module": _module_of(etype),
            "type": _type_name(etype),
            "value": _with_notes(_value_of(exc), exc),
        }
        if tb is not None:
            opts = self.opts
            try:
                raw = _collect_traceback(tb, opts)
                if raw:
                    if self.full_stack is not None:
                        raw = _merge_full_stack(self.full_stack, raw, opts)
                    entry["stacktrace"] = {"frames": _render(raw, opts)}
            except Exception:
                pass
        return entry


def _traceback_of(exc: BaseException) -> TracebackType | None:
    tb = getattr(exc, "__traceback__", None)
    return tb if isinstance(tb, TracebackType) else None


def _next_in_chain(exc: BaseException) -> tuple[BaseException | None, str]:
    """The exception this one was raised from or during, and its ``source`` name."""
    try:
        if exc.__suppress_context__:
            nxt: object = exc.__cause__
            source = "__cause__"
        else:
            nxt = exc.__context__
            source = "__context__"
    except Exception:  # exotic subclasses: end the chain rather than fail
        return None, "__context__"
    return (nxt if isinstance(nxt, BaseException) else None), source


def _chain(
    builder: _Builder,
    etype: type,
    exc: BaseException,
    tb: TracebackType | None,
    mech: dict[str, Any],
) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        group = _is_group(current)
        mechanism = dict(mech)
        _add_errno(mechanism, current)
        if group:
            mechanism["is_exception_group"] = True
        values.append(builder.single(etype, current, tb, mechanism, group))
        current, _source = _next_in_chain(current)
        if current is not None:
            etype, tb = type(current), _traceback_of(current)
    values.reverse()
    return values


def _group_tree(
    builder: _Builder,
    etype: type,
    exc: BaseException,
    tb: TracebackType | None,
    mech: dict[str, Any],
) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = []
    seen: set[int] = set()
    next_id = 0
    # Depth-first, ids in visiting order: an exception, then its cause/context (and
    # everything under it), then its members. Done with an explicit stack so that a
    # long chain cannot exhaust the interpreter's recursion limit.
    # Entries: (exception, type, traceback, source, parent_id); the root has no source.
    todo: list[tuple[BaseException, type, TracebackType | None, str | None, int]] = [
        (exc, etype, tb, None, 0)
    ]
    while todo:
        current, ctype, ctb, source, parent_id = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        my_id = next_id
        next_id += 1
        group = _is_group(current)
        # Key order follows sentry-sdk: a "type" the given mechanism lacks comes last.
        mechanism = dict(mech)
        mechanism["exception_id"] = my_id
        _add_errno(mechanism, current)
        if source is None:
            mechanism.setdefault("type", "generic")
        else:
            mechanism["source"] = source
            mechanism["parent_id"] = parent_id
            mechanism["type"] = "chained"
        if group:
            mechanism["is_exception_group"] = True
        values.append(builder.single(ctype, current, ctb, mechanism, group))

        if group:
            try:
                members = tuple(current.exceptions)  # type: ignore[attr-defined]
            except Exception:
                members = ()
            for index in range(len(members) - 1, -1, -1):
                member = members[index]
                if isinstance(member, BaseException):
                    todo.append(
                        (member, type(member), _traceback_of(member), f"exceptions[{index}]", my_id)
                    )
        chained, chained_source = _next_in_chain(current)
        if chained is not None:
            # sentry-sdk 2.x gives chained (non-member) exceptions parent_id 0.
            todo.append((chained, type(chained), _traceback_of(chained), chained_source, 0))
    values.reverse()
    return values


def exc_info_from_error(error: BaseException | ExcInfo | None) -> ExcInfo | None:
    """Normalise what ``capture_exception`` accepts into an exc_info tuple.

    ``None`` means the exception being handled right now. Returns ``None`` when there
    is nothing to report (or `error` is not an exception or exc_info tuple).
    """
    given: object = error  # checked at run time: callers pass anything
    try:
        if given is None:
            info: Any = sys.exc_info()
        elif isinstance(given, BaseException):
            return (type(given), given, _traceback_of(given))
        elif isinstance(given, tuple) and len(given) == 3:
            info = given
        else:
            return None
        etype, value, tb = info
        if value is not None and not isinstance(value, BaseException):
            return None
        if value is None:
            if isinstance(etype, type) and issubclass(etype, BaseException):
                return (etype, None, None)
            return None
        if not (isinstance(etype, type) and issubclass(etype, BaseException)):
            etype = type(value)
        if not isinstance(tb, TracebackType):
            tb = None
        return (etype, value, tb)
    except Exception:
        return None


def exceptions_from_exc_info(
    exc_info: ExcInfo, opts: FrameOptions, mechanism: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The ``exception.values`` list for `exc_info`, outermost exception last.

    Args:
        exc_info: ``(type, value, traceback)``; a ``None`` value gives an empty list.
        opts: Frame options of the client.
        mechanism: How the exception was caught; defaults to
            ``{"type": "generic", "handled": True}``.

    Never raises.
    """
    try:
        etype, value, tb = exc_info
        if value is None:
            return []
        if not (isinstance(etype, type) and issubclass(etype, BaseException)):
            etype = type(value)
        mech = dict(mechanism) if mechanism else dict(_DEFAULT_MECHANISM)
        full_stack: list[_Raw] | None = None
        if opts.add_full_stack and tb is not None:
            try:
                full_stack = _collect_stack(sys._getframe(1), opts)
            except Exception:
                full_stack = None
        builder = _Builder(opts, full_stack)
        if _is_group(value):
            return _group_tree(builder, etype, value, tb, mech)
        return _chain(builder, etype, value, tb, mech)
    except Exception:
        return []


def event_from_exception(
    error: BaseException | ExcInfo | None,
    opts: FrameOptions,
    mechanism: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build ``(event, hint)`` for an exception, like sentry-sdk's helper of that name.

    The event is ``{"level": "error", "exception": {"values": [...]}}`` and the hint
    ``{"exc_info": exc_info}`` (``None`` and no values when there was nothing to report).
    """
    exc_info = exc_info_from_error(error)
    values = exceptions_from_exc_info(exc_info, opts, mechanism) if exc_info is not None else []
    event: dict[str, Any] = {"level": "error", "exception": {"values": values}}
    return event, {"exc_info": exc_info}
