"""The TypeSafe AI integration: typesafe-sdk's real clients against a loopback fake.

The fake (`fakes.typesafe_server`) answers System One requests as the API does. The
differential test runs one script on sentry_sdk 2.75 and on tripwire.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import run
from fakes.typesafe_server import TypeSafeServer, serving

import tripwire
from tripwire.integrations.typesafe import TypeSafeIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    from typesafe_sdk import AsyncTypeSafeClient, TypeSafeBadRequestError, TypeSafeClient

TESTS = str(Path(__file__).parent)
QUESTIONS: dict[str, Any] = {}


@pytest.fixture(autouse=True, scope="module")
def _typesafe() -> None:
    """typesafe-sdk is imported when the module's tests start, not at collection (every
    xdist worker collects every module; tests/_lazy.py); the questions are made here."""
    global AsyncTypeSafeClient, TypeSafeBadRequestError, TypeSafeClient
    from typesafe_sdk import (
        AsyncTypeSafeClient,
        Choice,
        Noul,
        Score,
        TypeSafeBadRequestError,
        TypeSafeClient,
    )

    QUESTIONS.update(
        {
            "billing": Noul(instructions="Is this about billing?"),
            "tone": Choice(instructions="tone?", criteria={"calm": None, "angry": None}),
            "urgency": Score(criteria=["later", "soon", "now"]),
        }
    )


@pytest.fixture
def server() -> Iterator[TypeSafeServer]:
    with serving() as srv:
        yield srv


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[TypeSafeIntegration()],
        default_integrations=False,
        traces_sample_rate=1.0,
        **options,
    )
    return memory


def evaluations(memory: MemoryTransport) -> list[dict[str, Any]]:
    """Each call's span, as the trace context of the transaction it became."""
    tripwire.flush()
    return [{"name": tx["transaction"], **tx["contexts"]["trace"]} for tx in memory.transactions]


def test_sync_call_with_messages(server: TypeSafeServer) -> None:
    memory = init(send_default_pii=True)
    with TypeSafeClient(
        api_key="k", base_url=server.url, compression=False, model="jev-1"
    ) as client:
        answer = client.system_one("I was charged twice", QUESTIONS)
    assert answer.nouls["billing"].noul == 0.98  # the caller's answer is untouched
    (span,) = evaluations(memory)
    assert (span["name"], span["op"], span["origin"]) == (
        "evaluate jev-1",
        "gen_ai.evaluate",
        "auto.ai.typesafe",
    )
    data = span["data"]
    assert data["gen_ai.provider.name"] == "typesafe"
    assert data["gen_ai.operation.name"] == "evaluate"
    assert data["gen_ai.request.model"] == "jev-1"
    assert data["gen_ai.response.model"] == "jev-1-2026"
    assert (data["gen_ai.usage.input_tokens"], data["gen_ai.usage.output_tokens"]) == (120, 12)
    assert json.loads(data["gen_ai.input.messages"]) == [
        {
            "type": "evaluation",
            "state": "I was charged twice",
            "questions": {
                "billing": {"type": "noul", "instructions": "Is this about billing?"},
                "tone": {
                    "type": "choice",
                    "criteria": {"calm": None, "angry": None},
                    "instructions": "tone?",
                },
                "urgency": {"type": "score", "criteria": ["later", "soon", "now"]},
            },
        }
    ]
    (output,) = json.loads(data["gen_ai.output.messages"])
    assert output["answers"]["tone"] == {
        "type": "choice",
        "choice": "angry",
        "probabilities": {"angry": 0.8, "calm": 0.2},
        "confidence": 0.9,
    }
    assert output["answers"]["urgency"]["legend"] == {"0": "later", "1": "soon", "2": "now"}


def test_async_call_without_pii_and_an_error(server: TypeSafeServer) -> None:
    memory = init()

    async def main() -> None:
        async with AsyncTypeSafeClient(api_key="k", base_url=server.url, compression=False) as ac:
            await ac.system_one("async", QUESTIONS, model="jev-2")
            with pytest.raises(TypeSafeBadRequestError):
                await ac.system_one("fail", QUESTIONS, model="jev-2")

    asyncio.run(main())
    ok, failed = evaluations(memory)
    assert ok["data"]["gen_ai.request.model"] == "jev-2"
    assert ok["data"]["gen_ai.usage.input_tokens"] == 120
    for span in (ok, failed):
        assert "gen_ai.input.messages" not in span["data"]
        assert "gen_ai.output.messages" not in span["data"]
    assert failed["status"] == "internal_error"
    assert memory.events == []  # the error is the caller's to handle


def test_quiet_without_the_integration_and_reset_undoes_the_patch(
    server: TypeSafeServer,
) -> None:
    original = TypeSafeClient.system_one, AsyncTypeSafeClient.system_one
    init()
    assert TypeSafeClient.system_one is not original[0]
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
    )
    with TypeSafeClient(api_key="k", base_url=server.url, compression=False) as client:
        client.system_one("state", QUESTIONS)
    assert evaluations(memory) == []
    reset()
    assert (TypeSafeClient.system_one, AsyncTypeSafeClient.system_one) == original


_SCRIPT = """
import asyncio
import sys
import warnings

sys.path.insert(0, TESTS)
from fakes.typesafe_server import serving
from sentry_sdk.integrations.typesafe import TypeSafeIntegration
from typesafe_sdk import (
    AsyncTypeSafeClient, Choice, Noul, Score, TypeSafeBadRequestError, TypeSafeClient,
)

QUESTIONS = {
    "billing": Noul(instructions="Is this about billing?"),
    "tone": Choice(instructions="tone?", criteria={"calm": None, "angry": None}),
    "urgency": Score(criteria=["later", "soon", "now"]),
}
RAW = {
    "billing": {"type": "noul", "instructions": "billing?"},
    "tone": {"type": "choice", "criteria": {"calm": None, "angry": None}},
    "urgency": {"type": "score", "criteria": ["a", "b"], "instructions": "how urgent?"},
    "where": {"type": "box", "instructions": "the face"},
}


def init(**options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, in 2.75
        sentry_sdk.init(transport=KEEP, default_integrations=False, traces_sample_rate=1.0,
                        integrations=[TypeSafeIntegration()], **options)


def calls(url):
    with TypeSafeClient(api_key="k", base_url=url, compression=False, model="jev-1") as client:
        client.system_one("I was charged twice", QUESTIONS)
        client.system_one(state={"ticket": 1}, questions=RAW, model="jev-2")
        try:
            client.system_one("fail", QUESTIONS)
        except TypeSafeBadRequestError as exc:
            NOTES.append(type(exc).__name__)

    async def main():
        async with AsyncTypeSafeClient(api_key="k", base_url=url, compression=False) as client:
            await client.system_one("async state", RAW)

    asyncio.run(main())


with serving() as server:
    init(send_default_pii=True)
    with sentry_sdk.start_transaction(name="pii"):
        calls(server.url)
    init()
    with sentry_sdk.start_transaction(name="no-pii"):
        calls(server.url)
    init(send_default_pii=True)
    calls(server.url)
    finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    """Transactions (their trace context) and v2 span items; ids, times, threads left out."""
    rows: list[Any] = []
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "transaction":
            trace = payload["contexts"]["trace"]
            data = {k: v for k, v in trace.get("data", {}).items() if not k.startswith("thread.")}
            row = [
                payload["transaction"],
                trace.get("op"),
                trace.get("status"),
                trace.get("origin"),
            ]
            rows.append(["transaction", *row, data, len(payload["spans"])])
        elif item["type"] == "span":
            for span in payload["items"]:
                attributes = {
                    k: v for k, v in span["attributes"].items()
                    if not k.startswith(("thread.", "sentry.sdk.", "sentry.segment.", "process."))
                }  # fmt: skip
                rows.append(["span", span["name"], span["status"], span["is_segment"], attributes])
        else:
            rows.append([item["type"]])
    return rows


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    script = f"TESTS = {TESTS!r}\n" + _SCRIPT
    sentry = run(script, "sentry", tmp_path)
    ours = run(script, "tripwire", tmp_path)
    assert ours["notes"] == sentry["notes"] == ["TypeSafeBadRequestError"] * 3
    expected, found = _shape(sentry), _shape(ours)
    assert found == expected
    assert len([row for row in found if row[0] == "span"]) == 8  # in the two transactions
