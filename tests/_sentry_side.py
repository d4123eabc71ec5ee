"""The sentry_sdk 2.75 side of the in-process differential tests.

One capturing transport, one envelope parser and one clean-up, shared by every test
that runs the same scenario through sentry_sdk and tripwire and compares the bytes.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Callable, Optional

import sentry_sdk
from sentry_sdk.transport import Transport as SentryTransport

DSN = "https://abc@o123.ingest.sentry.io/42"

Envelope = tuple[dict[str, Any], list[tuple[str, Any]]]


class SentryCapture(SentryTransport):  # type: ignore[misc]
    """Keeps the wire bytes of every envelope sentry_sdk hands its transport."""

    def __init__(self, dsn: Optional[str] = DSN) -> None:
        # sentry_sdk reads the DSN's public key from its transport's options.
        super().__init__({"dsn": dsn} if dsn else None)
        self.raw: list[bytes] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.raw.append(envelope.serialize())


def parse_envelopes(raw: list[bytes]) -> list[Envelope]:
    """Each envelope as (header, [(item type, payload)]): JSON payloads decoded.

    Items with a `length` are read by length, so binary attachments parse too.
    """
    out = []
    for blob in raw:
        header_line, _, rest = blob.partition(b"\n")
        items = []
        while rest.strip():
            item_line, _, rest = rest.partition(b"\n")
            item_header = json.loads(item_line)
            length = item_header.get("length")
            if length is None:
                body, _, rest = rest.partition(b"\n")
            else:
                body, rest = rest[:length], rest[length + 1 :]
            try:
                payload: Any = json.loads(body)
            except ValueError:
                payload = body
            items.append((item_header["type"], payload))
        out.append((json.loads(header_line), items))
    return out


def payloads(raw: list[bytes], kind: str = "event") -> list[Any]:
    """The payloads of every item of type `kind`, in order."""
    return [p for _, items in parse_envelopes(raw) for t, p in items if t == kind]


def reset_sentry() -> None:
    """Close sentry_sdk's client and leave its scopes as a fresh process has them."""
    sentry_sdk.get_client().close()
    for scope in (
        sentry_sdk.get_isolation_scope(),
        sentry_sdk.get_current_scope(),
        sentry_sdk.get_global_scope(),
    ):
        scope.clear()
    sentry_sdk.get_global_scope().set_client(None)


def run_both(
    scenario: Callable[[Any], Any], **options: Any
) -> tuple[tuple[list[Envelope], Any], tuple[list[Envelope], Any]]:
    """Run `scenario(sdk)` on sentry_sdk, then on tripwire, with the same options.

    Returns ``((envelopes, result), (envelopes, result))``, sentry_sdk's first. Both
    clients are closed afterwards (a later run_both would otherwise replace tripwire's
    client with its threads still running). sentry_sdk's own DeprecationWarnings are
    silenced: the tests compare what is sent, and tripwire's warnings are tested apart.
    """
    import tripwire
    from tripwire.testing import MemoryTransport

    theirs = SentryCapture()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sentry_sdk.init(
            dsn=DSN,
            transport=theirs,
            release="r1",
            default_integrations=False,
            enable_backpressure_handling=False,
            **options,
        )
        try:
            their_result = scenario(sentry_sdk)
        finally:
            reset_sentry()
        ours = MemoryTransport()
        tripwire.init(dsn=DSN, transport=ours, release="r1", default_integrations=False, **options)
    client = tripwire.get_client()
    try:
        our_result = scenario(tripwire)
        tripwire.flush()
        our_envelopes = parse_envelopes(ours.raw)
    finally:
        client.close()
    return (parse_envelopes(theirs.raw), their_result), (our_envelopes, our_result)


class Ids:
    """Replaces ids by placeholders numbered in order of first appearance.

    `known` names ids the test chose itself (an incoming trace id, say).
    """

    def __init__(self, known: Optional[dict[str, str]] = None) -> None:
        self.seen: dict[str, str] = dict(known or {})

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value not in self.seen:
            self.seen[value] = f"<id{len(self.seen)}>"
        return self.seen[value]


TIMES = frozenset({"timestamp", "start_timestamp", "sent_at"})
# What differs between the SDKs by nature: ids, identity, the machine.
VOLATILE = frozenset({"event_id", "sdk", "server_name", "modules", "platform"})


def normalise(
    value: Any, ids: Ids, mask_rand: bool = False, drop: frozenset[str] = VOLATILE
) -> Any:
    """`value` with ids numbered, times and thread ids masked and `drop` keys left out.

    `mask_rand`: also mask `sample_rand`, random in a new trace.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in drop:
                continue
            if key in TIMES:
                out[key] = "<time>" if item is not None else None
            elif key in ("trace_id", "span_id", "parent_span_id"):
                out[key] = ids(item)
            elif key == "thread.id":
                out[key] = "<thread>"
            elif key == "sample_rand" and mask_rand:
                out[key] = "<rand>"
            else:
                out[key] = normalise(item, ids, mask_rand, drop)
        return out
    if isinstance(value, (list, tuple)):
        return [normalise(item, ids, mask_rand, drop) for item in value]
    return value
