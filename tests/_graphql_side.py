"""Compare what sentry_sdk 2.75 and tripwire send for one GraphQL scenario script.

The GraphQL integrations' tests run their script on both SDKs (`_side_by_side`),
for each collection setting in turn, and compare the error events, the request and response
data on them, and the transactions' GraphQL spans.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from _side_by_side import dumps, events, of_type, run_both, run_each

# sentry_sdk deprecates send_default_pii; the scripts run with -W error.
PRELUDE = "import warnings\nwarnings.simplefilter('ignore', DeprecationWarning)\n"
SETTINGS = (
    "{}",
    '{"send_default_pii": True}',
    '{"data_collection": {"graphql": {"document": False}}}',
    '{"data_collection": {"graphql": {"variables": False}, "http_bodies": []}}',
)
_PORT = re.compile(r"127\.0\.0\.1:\d+")


def _loopback(found: dict[str, Any]) -> dict[str, Any]:
    """Ports differ between the two runs' servers."""
    same: dict[str, Any] = json.loads(_PORT.sub("127.0.0.1:PORT", json.dumps(found)))
    return same


def _without_cycle(found: dict[str, Any]) -> dict[str, Any]:
    """sentry_sdk's gql puts its ``response`` context inside itself (as ``type``), which
    its serializer sends as ``"<cyclic>"``; tripwire leaves that key out."""
    for event in of_type(found, "event"):
        response = (event.get("contexts") or {}).get("response")
        if isinstance(response, dict) and response.get("type") == "<cyclic>":
            del response["type"]
    return found


def span_shape(transaction: dict[str, Any]) -> dict[str, Any]:
    """A transaction's name, op and spans (sorted; no ids, times or thread data)."""
    spans = [
        (
            span["op"],
            span.get("description"),
            span.get("origin"),
            span.get("status"),
            {k: v for k, v in (span.get("data") or {}).items() if not k.startswith("thread.")},
        )
        for span in transaction["spans"]
    ]
    return {
        "name": transaction.get("transaction"),
        "source": (transaction.get("transaction_info") or {}).get("source"),
        "op": transaction["contexts"]["trace"].get("op"),
        "spans": sorted(spans, key=dumps),
    }


def graphql_data(event: dict[str, Any]) -> dict[str, Any]:
    """What the GraphQL integrations put on an event."""
    request = event.get("request") or {}
    return {
        "api_target": request.get("api_target"),
        "data": request.get("data"),
        "url": request.get("url"),
        "query_string": request.get("query_string"),
        "response": (event.get("contexts") or {}).get("response"),
    }


def compare(
    script: str, tmp_path: Path, settings: tuple[str, ...] = SETTINGS, one_interpreter: bool = True
) -> list[Any]:
    """Run `script` (which reads `OPTS`) on both SDKs per setting; assert they agree.

    `one_interpreter`: every setting in one interpreter per SDK, one after the other
    (the GraphQL libraries' imports are most of a run's cost); else one per setting.
    Returns tripwire's runs, for assertions of the test's own.
    """
    codes = [f"{PRELUDE}OPTS = {setting}\n{script}" for setting in settings]
    if one_interpreter:
        last = codes.pop()
        code = "".join(c.replace("\nfinish()\n", "\nnext_scenario()\n") for c in codes) + last
        both = run_each(code, tmp_path)
    else:
        both = [run_both(code, tmp_path) for code in codes]
    assert len(both) == len(settings)
    runs = []
    for setting, found in zip(settings, both):
        sentry, tripwire = (_loopback(one) for one in found)
        sentry = _without_cycle(sentry)
        assert sentry["notes"] == tripwire["notes"], setting
        assert events(tripwire) == events(sentry), setting + dumps(events(sentry))
        ours = [graphql_data(e) for e in of_type(tripwire, "event")]
        theirs = [graphql_data(e) for e in of_type(sentry, "event")]
        assert ours == theirs, setting + dumps(theirs)
        ours_tx = [span_shape(t) for t in of_type(tripwire, "transaction")]
        theirs_tx = [span_shape(t) for t in of_type(sentry, "transaction")]
        assert ours_tx == theirs_tx, setting + dumps(theirs_tx)
        runs.append(tripwire)
    return runs
