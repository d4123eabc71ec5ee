"""Cron monitors: `capture_checkin`, `monitor` and the ``check_in`` items they send."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest

import tripwire
from tripwire.crons import MonitorStatus, capture_checkin, monitor
from tripwire.testing import MemoryTransport, deterministic_ids, frozen_clock, reset


@pytest.fixture(autouse=True)
def _reset_sdk() -> Iterator[None]:
    yield
    reset()


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(transport=memory, **options)
    return memory


def checkins(memory: MemoryTransport) -> list[dict[str, Any]]:
    return [json.loads(item.get_bytes()) for item in memory.items("check_in")]


def test_public_names_match_sentry_sdk() -> None:
    import sentry_sdk.crons

    assert set(sentry_sdk.crons.__all__) <= set(tripwire.crons.__all__)
    assert tripwire.monitor is monitor
    assert (MonitorStatus.IN_PROGRESS, MonitorStatus.OK, MonitorStatus.ERROR) == (
        "in_progress",
        "ok",
        "error",
    )


def test_checkin_envelope_and_payload() -> None:
    deterministic_ids()
    frozen_clock(1_700_000_000.0)
    memory = init(release="1.0", environment="prod", server_name="cron-1", dist="7")
    config = {
        "schedule": {"type": "crontab", "value": "0 * * * *"},
        "checkin_margin": 1,
        "max_runtime": 2,
        "timezone": "UTC",
    }
    check_in_id = capture_checkin(
        monitor_slug="hourly", status=MonitorStatus.ERROR, duration=1.5, monitor_config=config
    )

    (envelope,) = memory.envelopes
    (item,) = envelope.items
    assert item.headers["type"] == "check_in"
    assert item.headers["content_type"] == "application/json"
    payload = json.loads(item.get_bytes())
    assert envelope.headers["event_id"] == payload["event_id"]
    assert envelope.headers["trace"]["trace_id"] == payload["contexts"]["trace"]["trace_id"]
    assert payload["check_in_id"] == check_in_id
    assert list(payload) == [
        "type",
        "monitor_slug",
        "check_in_id",
        "status",
        "duration",
        "environment",
        "release",
        "monitor_config",
        "event_id",
        "timestamp",
        "contexts",
        "server_name",
        "dist",
        "sdk",
        "platform",
    ]
    assert payload["type"] == "check_in"
    assert payload["monitor_slug"] == "hourly"
    assert payload["status"] == "error"
    assert payload["duration"] == 1.5
    assert payload["environment"] == "prod"
    assert payload["release"] == "1.0"
    assert payload["monitor_config"] == config
    assert payload["timestamp"] == "2023-11-14T22:13:20.000000Z"
    assert payload["server_name"] == "cron-1"
    assert payload["dist"] == "7"
    assert payload["sdk"]["name"] == "tripwire.python"
    assert payload["platform"] == "python"


def test_update_an_existing_checkin() -> None:
    memory = init()
    check_in_id = capture_checkin(monitor_slug="job", status="in_progress")
    assert check_in_id is not None and len(check_in_id) == 32
    assert capture_checkin(monitor_slug="job", check_in_id=check_in_id, status="ok") == check_in_id

    first, second = checkins(memory)
    assert first["check_in_id"] == second["check_in_id"] == check_in_id
    assert (first["status"], second["status"]) == ("in_progress", "ok")
    assert first["duration"] is None
    assert first["event_id"] != second["event_id"]


def test_scope_data_does_not_apply_but_before_send_does() -> None:
    seen: list[str | None] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(event.get("type"))
        return None if event.get("monitor_slug") == "dropped" else event

    memory = init(before_send=before_send, sample_rate=0.0)
    tripwire.set_tag("tag", "value")
    tripwire.set_user({"id": "1"})
    tripwire.set_extra("extra", 1)
    tripwire.add_breadcrumb(message="crumb")
    tripwire.get_isolation_scope().add_event_processor(lambda event, hint: None)

    assert capture_checkin(monitor_slug="kept", status="ok") is not None
    assert capture_checkin(monitor_slug="dropped", status="ok") is None

    (payload,) = checkins(memory)  # sample_rate and event processors do not apply
    assert seen == ["check_in", "check_in"]
    for key in ("tags", "user", "extra", "breadcrumbs", "level"):
        assert key not in payload
    assert set(payload["contexts"]) == {"trace"}
    assert tripwire.get_client().outcomes.snapshot() == {("before_send", "monitor"): 1}


def test_without_client_nothing_is_sent() -> None:
    assert capture_checkin(monitor_slug="x", status="ok") is None

    @monitor(monitor_slug="x")
    def job() -> int:
        return 3

    assert job() == 3


def test_monitor_decorator() -> None:
    memory = init()

    @monitor(monitor_slug="nightly")
    def job(a: int, b: int = 1) -> int:
        """Docstring kept."""
        return a + b

    assert job(2, b=3) == 5
    assert job.__name__ == "job"
    assert job.__doc__ == "Docstring kept."

    start, end = checkins(memory)
    assert (start["monitor_slug"], start["status"], start["duration"]) == (
        "nightly",
        "in_progress",
        None,
    )
    assert end["status"] == "ok"
    assert end["check_in_id"] == start["check_in_id"]
    assert isinstance(end["duration"], float) and end["duration"] >= 0


def test_monitor_decorator_reports_errors_and_reraises() -> None:
    memory = init()
    config = {"schedule": {"type": "interval", "value": 5, "unit": "minute"}}

    @monitor(monitor_slug="flaky", monitor_config=config)
    def job() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        job()

    start, end = checkins(memory)
    assert (start["status"], end["status"]) == ("in_progress", "error")
    assert start["monitor_config"] == end["monitor_config"] == config
    assert memory.events == []  # the monitor reports the failure; capturing it is not its job


def test_each_call_of_a_decorated_function_is_its_own_checkin() -> None:
    memory = init()

    @monitor("job")
    def job() -> None:
        pass

    job()
    job()
    first_start, first_end, second_start, second_end = checkins(memory)
    assert first_start["check_in_id"] == first_end["check_in_id"]
    assert second_start["check_in_id"] == second_end["check_in_id"]
    assert first_start["check_in_id"] != second_start["check_in_id"]


def test_monitor_async_decorator() -> None:
    memory = init()

    @monitor(monitor_slug="async-job")
    async def job(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @monitor(monitor_slug="async-fail")
    async def failing() -> None:
        await asyncio.sleep(0)
        raise KeyError("k")

    assert inspect.iscoroutinefunction(job)
    assert asyncio.run(job(4)) == 8
    with pytest.raises(KeyError):
        asyncio.run(failing())

    statuses = [(c["monitor_slug"], c["status"]) for c in checkins(memory)]
    assert statuses == [
        ("async-job", "in_progress"),
        ("async-job", "ok"),
        ("async-fail", "in_progress"),
        ("async-fail", "error"),
    ]


def test_monitor_context_managers() -> None:
    memory = init()
    with monitor("ctx"):
        pass
    with pytest.raises(RuntimeError), monitor("ctx-fail"):
        raise RuntimeError("x")

    async def run() -> None:
        async with monitor("actx"):
            await asyncio.sleep(0)

    asyncio.run(run())

    statuses = [(c["monitor_slug"], c["status"]) for c in checkins(memory)]
    assert statuses == [
        ("ctx", "in_progress"),
        ("ctx", "ok"),
        ("ctx-fail", "in_progress"),
        ("ctx-fail", "error"),
        ("actx", "in_progress"),
        ("actx", "ok"),
    ]


# -- differential: the same check-ins through sentry-sdk 2.75 --------------------------------------


def _shape(payload: dict[str, Any]) -> dict[str, Any]:
    volatile = {"check_in_id", "event_id", "timestamp", "sdk", "contexts", "duration", "release"}
    out = {k: v for k, v in payload.items() if k not in volatile}
    out["keys"] = list(payload)
    out["trace_keys"] = sorted(payload["contexts"]["trace"])
    out["duration_type"] = type(payload["duration"]).__name__
    return out


def _scenario(api: Any) -> None:
    cid = api.capture_checkin(monitor_slug="s1", status=api.MonitorStatus.IN_PROGRESS)
    api.capture_checkin(monitor_slug="s1", check_in_id=cid, status="ok", duration=2.5)
    api.capture_checkin(
        monitor_slug="s2",
        status="error",
        monitor_config={"schedule": {"type": "crontab", "value": "* * * * *"}},
    )
    api.capture_checkin()

    def job() -> None:
        pass

    api.monitor(monitor_slug="deco")(job)()
    with pytest.raises(ValueError), api.monitor("ctx"):
        raise ValueError


def test_checkin_payloads_match_sentry_sdk() -> None:
    import sentry_sdk.crons
    from _sample_sentry import sentry_client

    options = {"environment": "env1", "server_name": "srv", "dist": "d1"}
    with sentry_client(**options) as captured:
        _scenario(sentry_sdk.crons)
    theirs: list[dict[str, Any]] = []
    headers: list[list[str]] = []
    for raw in captured.raw:
        lines = raw.split(b"\n")
        headers.append(sorted(json.loads(lines[0])))
        if json.loads(lines[1]).get("type") == "check_in":
            theirs.append(_shape(json.loads(lines[2])))

    memory = init(**options)
    _scenario(tripwire.crons)
    ours = [_shape(json.loads(item.get_bytes())) for item in memory.items("check_in")]

    assert ours == theirs
    assert len(ours) == 8
    assert [sorted(env.headers) for env in memory.envelopes] == headers
