"""GnuBacktraceIntegration: native backtrace lines in exception values become frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from _side_by_side import dumps, of_type, run_both

import tripwire
from tripwire.integrations.gnu_backtrace import GnuBacktraceIntegration
from tripwire.testing import MemoryTransport

InitMemory = Callable[..., MemoryTransport]

NOTE = "<stacktrace parsed and removed by GnuBacktraceIntegration>"

CLICKHOUSE = """DB::Exception: Cannot parse input: expected '(' before: 'x': (at row 1)

Stack trace:
0. /usr/bin/clickhouse-server(StackTrace::StackTrace()+0x16) [0x99d31a6]
1. 0x7f2ee11a8f23 in /lib/x86_64-linux-gnu/libc.so.6
5. ? @ 0x0000000000a1b2c3 in /usr/bin/clickhouse
6. DB::executeQuery(DB::ReadBuffer&) @ 0x000000000e4b9f3a in /usr/bin/clickhouse
7. /src/Interpreters/executeQuery.cpp:123: DB::run(char const*) @ 0xE4B9F3A in /usr/bin/clickhouse
8. 0x1234 in func (a=1) at file.c:42
"""


class ServerException(Exception):
    pass


def test_backtrace_lines_become_native_frames(init_memory: InitMemory) -> None:
    memory = init_memory(integrations=[GnuBacktraceIntegration()], default_integrations=False)
    try:
        raise ServerException(CLICKHOUSE)
    except ServerException:
        tripwire.capture_exception()
    tripwire.capture_exception(ServerException(CLICKHOUSE))  # never raised: no stacktrace
    raised, unraised = (event["exception"]["values"][0] for event in memory.events)
    assert raised["value"] == (
        "DB::Exception: Cannot parse input: expected '(' before: 'x': (at row 1)\n\n"
        "Stack trace:\n"
        "0. /usr/bin/clickhouse-server(StackTrace::StackTrace()+0x16) [0x99d31a6]\n"
        "1. 0x7f2ee11a8f23 in /lib/x86_64-linux-gnu/libc.so.6\n"
        "8. 0x1234 in func (a=1) at file.c:42\n" + NOTE
    )
    frames = raised["stacktrace"]["frames"]
    assert frames[0]["function"] == "test_backtrace_lines_become_native_frames"
    assert frames[1:] == [
        {
            "package": "/usr/bin/clickhouse",
            "function": "/src/Interpreters/executeQuery.cpp:123: DB::run(char const*)",
            "platform": "native",
        },
        {
            "package": "/usr/bin/clickhouse",
            "function": "DB::executeQuery(DB::ReadBuffer&)",
            "platform": "native",
        },
        {"package": "/usr/bin/clickhouse", "function": "?", "platform": "native"},
    ]
    assert unraised["value"] == CLICKHOUSE
    assert "stacktrace" not in unraised


CASES = [
    "x\n5. ? @ 0x0000000000a1b2c3",
    "5. f(int) @ 0xa1 in /usr/bin/clickhouse   \n",
    "x\r\n5. f @ 0x1 in /b\r\nmid\n6. g @ 0x2 in /lib/a.so\n\n",
    "x\n  5. f @ 0x1 in /b\n\t6. f @ 0x1 in /b\nx 7. f @ 0x1 in /b",
    "x\n5. f @ 0X12 in /b\n5. f @ 0x12g in /b\n5. f @ 0x12 on /b\n5. f @ 0x12 in ",
    "x\n5. h(x @ y) @ 0x14 in /c\n5. f @ 0x14 in /c @ d\n5.f @ 0x1 in /b\n5 f @ 0x1 in /b",
    "x\n5.  f  @  0x1  in  /a in /b\n12345. f\t@\t0x12\tin\t/b\x0b6. g @ 0x1 in /c",
    "x\n5. @ 0x12 in /b\n5. f @ 0x14 @ 0x15\n5. f @ 0x14 \n-5. f @ 0x12 in /b",
    "x\n1. a @ 0x1\n3. c @ 0x3 in /c\n1. b @ 0x2\n0. z @ 0x2\n٣. d @ 0x3",
    "",
]

SCRIPT = f"""
from sentry_sdk.integrations.gnu_backtrace import GnuBacktraceIntegration

sentry_sdk.init(
    transport=KEEP, integrations=[GnuBacktraceIntegration()], default_integrations=False
)


def chained():
    try:
        raise KeyError("a\\\\n1. f @ 0x1 in /x")
    except KeyError as error:
        raise RuntimeError("b\\n2. g @ 0x2 in /y") from error


for case in {CASES!r}:
    try:
        raise ValueError(case)
    except ValueError:
        sentry_sdk.capture_exception()
try:
    chained()
except RuntimeError:
    sentry_sdk.capture_exception()
sentry_sdk.capture_exception(ValueError("x\\n5. f @ 0x12 in /b"))
finish()
"""


def values_of(found: dict[str, Any]) -> list[Any]:
    return [
        [
            (
                value["value"],
                [
                    frame if frame.get("platform") else (frame["function"], frame["lineno"])
                    for frame in (value.get("stacktrace") or {}).get("frames", [])
                ],
            )
            for value in event["exception"]["values"]
        ]
        for event in of_type(found, "event")
    ]


def test_same_output_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT, tmp_path)
    assert values_of(ours) == values_of(sentry), dumps([values_of(sentry), values_of(ours)])
    assert len(values_of(ours)) == len(CASES) + 2
    assert sum(NOTE in str(value) for value in values_of(ours)) == 7
