"""Triage: an issue's status, how a user changes it, and what a new event does to it.

The statuses are those users know from Sentry, GlitchTip and Bugsink:

- ``unresolved``: the default; a new issue starts here;
- ``resolved``: fixed. The next event reopens it as a *regression* (``substatus``
  ``regressed``, said on the list and the issue page), unless it happened before the
  issue was resolved (a late arrival). Resolved *in the next release*: events of the
  release current when it was resolved (or without a release) are expected and keep
  it resolved; the first event of another release is the regression;
- ``ignored``: hidden from the default list; forever, until a time (``ignore_until``),
  or until N more events (``ignore_until_count``, against ``times_seen``). When the
  time or the count is reached the issue is unresolved again (``substatus``
  ``unignored``); an ignore until a time also ends with no new event (`effective_status`).

Everything here is pure: `Action` is what the user asked for, `after_event` what an
event does to an issue's stored triage fields. `tripwire.server.store.Store.triage`
and the event saver apply them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

__all__ = [
    "STATUSES",
    "Action",
    "Change",
    "after_event",
    "effective_status",
    "parse_action",
]

STATUSES = ("unresolved", "resolved", "ignored")
# What the issue list filters on with ``is:``: the statuses plus these.
FILTERS = (*STATUSES, "regressed", "all")

# Bounds on what a user may ask for: a year, a million events.
MAX_IGNORE_MINUTES = 366 * 24 * 60
MAX_IGNORE_COUNT = 1_000_000


@dataclass(frozen=True)
class Action:
    """A triage action on one or more issues.

    `ignore_minutes` and `ignore_count` apply to ``ignored`` only (None: forever);
    `in_next_release` to ``resolved`` only.
    """

    status: str
    in_next_release: bool = False
    ignore_minutes: Optional[int] = None
    ignore_count: Optional[int] = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown issue status {self.status!r}: one of {', '.join(STATUSES)}")
        if self.in_next_release and self.status != "resolved":
            raise ValueError("in_next_release applies to status 'resolved' only")
        for name, value, bound in (
            ("ignore_minutes", self.ignore_minutes, MAX_IGNORE_MINUTES),
            ("ignore_count", self.ignore_count, MAX_IGNORE_COUNT),
        ):
            if value is None:
                continue
            if self.status != "ignored":
                raise ValueError(f"{name} applies to status 'ignored' only")
            if type(value) is not int or not 1 <= value <= bound:
                raise ValueError(f"{name} must be a whole number from 1 to {bound}")

    def describe(self, release: Optional[str] = None) -> str:
        """The activity log's words for this action."""
        if self.status == "resolved":
            if not self.in_next_release:
                return "resolved"
            after = f" (after {release})" if release else ""
            return f"resolved in the next release{after}"
        if self.status == "ignored":
            limits = []
            if self.ignore_minutes is not None:
                limits.append(f"for {_duration(self.ignore_minutes)}")
            if self.ignore_count is not None:
                limits.append(f"until {self.ignore_count} more events")
            return "ignored " + (" or ".join(limits) if limits else "until further notice")
        return "unresolved"


def _duration(minutes: int) -> str:
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes % size == 0:
            n = minutes // size
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


# Sentry's web API status names, read as ours (``PUT /api/0/issues/<id>/``).
_API_STATUSES = {
    "resolvedInNextRelease": ("resolved", True),
    "resolved_in_next_release": ("resolved", True),
    "archived": ("ignored", False),
    "muted": ("ignored", False),
}


def parse_action(body: Any) -> Action:
    """An `Action` from a JSON body as Sentry's API takes it.

    ``{"status": "resolved"}``, ``{"status": "resolvedInNextRelease"}`` or
    ``{"status": "resolved", "statusDetails": {"inNextRelease": true}}``,
    ``{"status": "ignored", "statusDetails": {"ignoreDuration": 30, "ignoreCount": 10}}``
    (minutes and events), ``{"status": "unresolved"}``.

    Raises:
        ValueError: anything else (the message says what).
    """
    if not isinstance(body, dict):
        raise ValueError('send a JSON object such as {"status": "resolved"}')
    status = body.get("status")
    if not isinstance(status, str):
        raise ValueError("status must be a string")
    status, in_next_release = _API_STATUSES.get(status, (status, False))
    details = body.get("statusDetails", {})
    if not isinstance(details, dict):
        raise ValueError("statusDetails must be an object")
    if details.get("inNextRelease") is True:
        in_next_release = True
    return Action(
        status,
        in_next_release=in_next_release,
        ignore_minutes=_whole(details.get("ignoreDuration"), "ignoreDuration"),
        ignore_count=_whole(details.get("ignoreCount"), "ignoreCount"),
    )


def _whole(value: Any, name: str) -> Optional[int]:
    if value is None:
        return None
    if type(value) is not int:
        raise ValueError(f"{name} must be a whole number")
    return value


@dataclass(frozen=True)
class Change:
    """What an event did to an issue: its new status and the activity to record."""

    status: str
    substatus: Optional[str]
    kind: str
    detail: str


def after_event(
    issue: Any, release: Optional[str], timestamp: float, now: float, event_id: str
) -> Optional[Change]:
    """What a new event of an existing issue changes (None: nothing).

    `issue` is the issue's row after the event was counted (``status``,
    ``status_changed``, ``in_next_release``, ``resolved_release``, ``ignore_until``,
    ``ignore_until_count``, ``times_seen``).
    """
    status = issue["status"]
    if status == "resolved":
        changed = issue["status_changed"]
        if changed is not None and timestamp < changed:
            return None  # happened before the fix: a late arrival, not a regression
        if issue["in_next_release"] and (release is None or release == issue["resolved_release"]):
            return None  # the fix is not released yet
        where = f" in release {release}" if release else ""
        return Change(
            "unresolved", "regressed", "regression", f"event {event_id}{where} reopened it"
        )
    if status == "ignored":
        until = issue["ignore_until"]
        if until is not None and now >= until:
            return Change("unresolved", "unignored", "unignored", "the ignore period ended")
        count = issue["ignore_until_count"]
        if count is not None and issue["times_seen"] >= count:
            return Change(
                "unresolved", "unignored", "unignored", "it happened as many times as allowed"
            )
    return None


def effective_status(status: str, ignore_until: Optional[float], now: float) -> str:
    """The status to show: an ignore until a time that has passed is over."""
    if status == "ignored" and ignore_until is not None and now >= ignore_until:
        return "unresolved"
    return status
