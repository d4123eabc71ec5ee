"""`Session`: one release-health session (as sentry_sdk.session.Session)."""

from __future__ import annotations

from typing import Any

from tripwire._clock import clock, format_timestamp, to_epoch

_TERMINAL = frozenset({"exited", "crashed", "abnormal"})


def _new_sid() -> str:
    import uuid  # lazy: only when a session starts

    return str(uuid.uuid4())


def _canonical_sid(sid: Any) -> str:
    # As sentry_sdk: a sid is a UUID (a malformed one raises ValueError), sent in its
    # canonical dashed form whatever form it was given in.
    import uuid  # lazy: only when a session starts

    return str(sid if isinstance(sid, uuid.UUID) else uuid.UUID(str(sid)))


class Session:
    """A session: started, updated by errors, closed with a final status."""

    def __init__(
        self,
        sid: str | None = None,
        did: str | None = None,
        timestamp: Any = None,
        started: Any = None,
        duration: float | None = None,
        status: str | None = None,
        release: str | None = None,
        environment: str | None = None,
        user_agent: str | None = None,
        ip_address: str | None = None,
        errors: int | None = None,
        user: dict[str, Any] | None = None,
        session_mode: str = "application",
    ) -> None:
        self.sid = _canonical_sid(sid) if sid else _new_sid()
        self.did: str | None = None
        now = clock.now()
        self.started: float = to_epoch(started) or now
        self.release = release
        self.environment = environment
        self.duration: float | None = None
        self.user_agent: str | None = None
        self.ip_address: str | None = None
        self.session_mode = session_mode
        self.errors = 0
        self.status = "ok"
        self.timestamp = now
        self._init = True
        self.update(
            did=did,
            timestamp=timestamp,
            duration=duration,
            status=status,
            user_agent=user_agent,
            ip_address=ip_address,
            errors=errors,
            user=user,
        )

    @property
    def truncated_started(self) -> float:
        """The start time rounded down to the minute (the aggregation bucket)."""
        return self.started - self.started % 60

    def update(
        self,
        sid: str | None = None,
        did: str | None = None,
        timestamp: Any = None,
        started: Any = None,
        duration: float | None = None,
        status: str | None = None,
        release: str | None = None,
        environment: str | None = None,
        user_agent: str | None = None,
        ip_address: str | None = None,
        errors: int | None = None,
        user: dict[str, Any] | None = None,
    ) -> None:
        """Update fields; a user fills in did (id, else email, else username) and ip_address."""
        if user is not None:
            if ip_address is None:
                ip_address = user.get("ip_address")
            if did is None:
                found = user.get("id") or user.get("email") or user.get("username")
                did = str(found) if found is not None else None
        if sid is not None:
            self.sid = _canonical_sid(sid)
        if did is not None:
            self.did = str(did)
        self.timestamp = to_epoch(timestamp) or clock.now()
        if started is not None:
            self.started = to_epoch(started) or self.started
        if duration is not None:
            self.duration = duration
        if release is not None:
            self.release = release
        if environment is not None:
            self.environment = environment
        if ip_address is not None:
            self.ip_address = ip_address
        if user_agent is not None:
            self.user_agent = user_agent
        if errors is not None:
            self.errors = errors
        if status is not None:
            self.status = status

    def close(self, status: str | None = None) -> None:
        """End the session: "exited" unless it already ended otherwise."""
        if status is None and self.status == "ok":
            status = "exited"
        if status is not None:
            self.update(status=status)

    def get_json_attrs(self, with_user_info: bool = True) -> dict[str, Any]:
        """The session's attrs (release, environment and, optionally, client info)."""
        attrs: dict[str, Any] = {}
        if self.release is not None:
            attrs["release"] = self.release
        if self.environment is not None:
            attrs["environment"] = self.environment
        if with_user_info:
            if self.ip_address is not None:
                attrs["ip_address"] = self.ip_address
            if self.user_agent is not None:
                attrs["user_agent"] = self.user_agent
        return attrs

    def to_json(self) -> dict[str, Any]:
        """The `session` item payload."""
        out: dict[str, Any] = {
            "sid": self.sid,
            "init": self._init,
            "started": format_timestamp(self.started),
            "timestamp": format_timestamp(self.timestamp),
            "status": self.status,
        }
        self._init = False  # only the first update of a session says init
        if self.errors:
            out["errors"] = self.errors
        if self.did is not None:
            out["did"] = self.did
        if self.duration is not None:
            out["duration"] = self.duration
        attrs = self.get_json_attrs()
        if attrs:
            out["attrs"] = attrs
        return out

    def __repr__(self) -> str:
        return f"<Session sid={self.sid} status={self.status} errors={self.errors}>"


def is_terminal(status: str) -> bool:
    """Whether a status ends the session."""
    return status in _TERMINAL
