"""Turns native backtrace lines in exception values into native frames.

ClickHouse (and clickhouse-driver, which relays its server errors) put a native stack
into the exception message, one frame per line::

    5. DB::executeQuery(DB::ReadBuffer&) @ 0x000000000e4b9f3a in /usr/bin/clickhouse

A line of that form (``N. FUNCTION @ 0xADDRESS`` and optionally ``in PACKAGE``, at the
very start of the line) becomes a frame ``{"package", "function", "platform":
"native"}``; those frames follow the Python frames, highest frame number first. The lines
are taken out of the value, which then ends with a note saying so. Only exception
values that carry a stacktrace are looked at; other lines are left as they are.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tripwire.integrations import Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import capturing_client

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

_LINE = re.compile(
    r"(?P<index>\d+)\.\s+(?P<function>[^@]+?)\s+@\s+0x(?P<address>[0-9a-fA-F]+)"
    r"(?:\s+in\s+(?P<package>.+))?"
)
_NOTE = "<stacktrace parsed and removed by GnuBacktraceIntegration>"


def parse(value: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The value without its backtrace lines, and the native frames (highest number first).

    ``None`` when no line is a backtrace line.
    """
    kept: list[str] = []
    found: list[tuple[int, dict[str, Any]]] = []
    for line in value.splitlines():
        match = _LINE.fullmatch(line)
        if match is None:
            kept.append(line)
            continue
        frame = {"package": match["package"], "function": match["function"], "platform": "native"}
        found.append((int(match["index"]), frame))
    if not found:
        return None
    # Highest frame number first; lines with the same number keep their order.
    found.sort(key=lambda item: item[0], reverse=True)
    kept.append(_NOTE)
    return "\n".join(kept), [frame for _index, frame in found]


def _process(value: dict[str, Any]) -> None:
    text = value.get("value")
    stacktrace = value.get("stacktrace")
    if not text or not isinstance(text, str) or not isinstance(stacktrace, dict):
        return
    frames = stacktrace.get("frames")
    if not isinstance(frames, list):
        return
    parsed = parse(text)
    if parsed is not None:
        value["value"], native = parsed
        frames.extend(native)


class GnuBacktraceIntegration(Integration):
    """Parses native backtraces out of exception values into frames."""

    identifier = "gnu_backtrace"

    @staticmethod
    def setup_once() -> None:
        """Register the processor."""

        def process(event: EventDict, hint: Hint) -> EventDict | None:
            if capturing_client().get_integration(GnuBacktraceIntegration) is None:
                return event
            values = (event.get("exception") or {}).get("values")
            if isinstance(values, list):
                for value in values:
                    if isinstance(value, dict):
                        _process(value)
            return event

        add_internal_processor(process)
