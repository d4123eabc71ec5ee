"""Runs the incumbent sentry-sdk for differential tests: its events as plain JSON dicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SENTRY_DSN = "https://public@sentry.invalid/1"


class Captured:
    """Events sentry-sdk sent, taken from the serialized envelopes."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    def last(self) -> dict[str, Any]:
        for line in self.raw[-1].split(b"\n"):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "level" in item and "event_id" in item:
                return item
        raise AssertionError("no event in the envelope")


@contextmanager
def sentry_client(**options: Any) -> Iterator[Captured]:
    """Init sentry-sdk with a transport that keeps envelopes; undo it afterwards."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    captured = Captured()

    class _Keep(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            captured.raw.append(envelope.serialize())

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        transport=_Keep,
        default_integrations=False,
        auto_enabling_integrations=False,
        **options,
    )
    try:
        yield captured
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def vars_keys(frames: list[dict[str, Any]], limit: int = 10) -> list[dict[str, Any]]:
    """Replace each frame's ``vars`` by its first keys (sentry-sdk's serializer keeps ten)."""
    for frame in frames:
        if "vars" in frame:
            frame["vars"] = list(frame["vars"])[:limit]
    return frames


def values_vars_keys(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`vars_keys` on every exception's frames."""
    for value in values:
        if "stacktrace" in value:
            vars_keys(value["stacktrace"]["frames"])
    return values
