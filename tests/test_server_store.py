"""The local backend's SQLite store and its queries (no HTTP here)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tripwire.server import queries
from tripwire.server.store import (
    SCHEMA_VERSION,
    SchemaError,
    Store,
    default_db_path,
    parse_timestamp,
)
from tripwire.server.store import StoredItem as Item


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "t.db")
    yield s
    s.close()


def _item(kind: str, payload: Any, **headers: Any) -> Item:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Item(kind, {"type": kind, **headers}, data)


def _error(event_id: str, value: str = "boom", **extra: Any) -> Item:
    event = {
        "event_id": event_id,
        "level": "error",
        "timestamp": "2024-05-01T10:00:00Z",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": value,
                    "stacktrace": {
                        "frames": [{"function": "handler", "module": "app", "in_app": True}]
                    },
                }
            ]
        },
        **extra,
    }
    return _item("event", event)


def test_a_new_database_is_versioned_in_wal_mode_with_a_default_project(tmp_path):
    with Store(tmp_path / "new.db") as store:
        conn = store.connection()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        project = store.default_project()
        assert project["id"] == 1
        assert len(project["public_key"]) == 32
        key = project["public_key"]
    # Reopening keeps the project and its key.
    with Store(tmp_path / "new.db") as again:
        assert again.default_project()["public_key"] == key
        assert again.project_for_key(key) == 1
        assert again.project_for_key("nope") is None


def test_a_database_from_a_newer_tripwire_is_refused_untouched(tmp_path):
    path = tmp_path / "future.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="upgrade tripwire"):
        Store(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    conn.close()


def test_another_sqlite_file_is_not_taken_over(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE mine (x)")
    conn.close()
    with pytest.raises(SchemaError, match="not a tripwire database"):
        Store(path)


def test_default_path_is_per_project_and_overridable(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIPWIRE_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_db_path() == tmp_path / ".tripwire" / "tripwire.db"
    with Store(default_db_path()):
        pass
    # The folder is kept out of version control.
    assert (tmp_path / ".tripwire" / ".gitignore").read_text().strip().endswith("*")
    monkeypatch.setenv("TRIPWIRE_DB", str(tmp_path / "elsewhere.db"))
    assert default_db_path() == tmp_path / "elsewhere.db"


def test_events_group_into_issues_with_counts_users_releases(store):
    store.save(1, [_error("a" * 32, "x 1", user={"id": "u1"}, release="1.0", environment="prod")])
    store.save(1, [_error("b" * 32, "x 2", user={"id": "u2"}, release="1.1", environment="prod")])
    store.save(1, [_error("c" * 32, "x 3", user={"id": "u1"}, release="1.1", environment="dev")])
    (issue,) = queries.list_issues(store)
    assert issue["count"] == 3
    assert issue["users"] == 2
    detail = queries.get_issue(store, issue["id"])
    assert detail is not None
    assert {r["name"]: r["count"] for r in detail["releases"]} == {"1.0": 1, "1.1": 2}
    assert {e["name"] for e in detail["environments"]} == {"prod", "dev"}
    assert {t["value"] for t in detail["tags"]["release"]} == {"1.0", "1.1"}
    assert sorted(e["event_id"] for e in queries.issue_events(store, issue["id"])) == [
        "a" * 32,
        "b" * 32,
        "c" * 32,
    ]


def test_duplicate_event_ids_are_stored_once(store):
    first = store.save(1, [_error("d" * 32)])
    again = store.save(1, [_error("d" * 32)])
    assert first.stored == {"event": 1}
    assert again.stored == {}
    assert again.dropped[0][1] == "duplicate"
    assert queries.list_issues(store)[0]["count"] == 1


def test_a_bad_item_is_left_out_and_the_rest_kept(store):
    result = store.save(
        1,
        [
            _item("session", {"no": "sid"}),
            _item("log", b"{not json"),
            _error("e" * 32),
            _item("check_in", ["not", "an", "object"]),
        ],
    )
    assert result.stored == {"event": 1}
    assert sorted(d[0] for d in result.dropped) == ["check_in", "log", "session"]
    assert queries.stats(store)["events"] == 1
    drops = queries.outcomes(store)["outcomes"]
    assert {(o["source"], o["reason"], o["category"]) for o in drops} == {
        ("server", "invalid", "session"),
        ("server", "invalid", "log_item"),
        ("server", "invalid", "monitor"),
    }


def test_search_and_filters(store):
    store.save(1, [_error("1" * 32, "100% broken_thing", release="1.0", environment="prod")])
    store.save(
        1,
        [
            _item(
                "event",
                {
                    "event_id": "2" * 32,
                    "message": "disk full",
                    "level": "warning",
                    "release": "2.0",
                    "environment": "dev",
                },
            )
        ],
    )
    titles = lambda **kw: sorted(i["title"] for i in queries.list_issues(store, **kw))  # noqa: E731
    assert titles(query="100%") == ["ValueError: 100% broken_thing"]
    assert titles(query="0% b") == ["ValueError: 100% broken_thing"]
    assert titles(query="_") == ["ValueError: 100% broken_thing"]
    assert titles(query="level:warning") == ["disk full"]
    assert titles(level="error") == ["ValueError: 100% broken_thing"]
    assert titles(environment="dev") == ["disk full"]
    assert titles(query="release:1.0") == ["ValueError: 100% broken_thing"]
    assert titles(query="disk release:1.0") == []


def test_a_resolved_issue_reopens_when_it_happens_again(store):
    store.save(1, [_error("3" * 32)])
    (issue,) = queries.list_issues(store)
    assert store.set_issue_status(issue["id"], "resolved")
    assert queries.list_issues(store) == []
    assert len(queries.list_issues(store, status="resolved")) == 1
    # An event that happened before the issue was resolved (a late arrival) does not
    # reopen it; one after does, as a regression.
    store.save(1, [_error("5" * 32)])
    assert queries.list_issues(store) == []
    store.save(1, [_error("4" * 32, timestamp=time.time() + 1)])
    (again,) = queries.list_issues(store)
    assert again["substatus"] == "regressed"
    assert again["id"] == issue["id"]
    assert again["status"] == "unresolved"
    assert again["count"] == 3


def test_sessions_keep_their_latest_state_and_make_release_health(store):
    def session(sid: str, status: str, ts: str, errors: int = 0) -> Item:
        return _item(
            "session",
            {
                "sid": sid,
                "did": "user-" + sid,
                "status": status,
                "errors": errors,
                "started": "2024-05-01T10:00:00Z",
                "timestamp": ts,
                "attrs": {"release": "app@1", "environment": "prod"},
            },
        )

    store.save(1, [session("s1", "ok", "2024-05-01T10:00:01Z")])
    store.save(1, [session("s1", "exited", "2024-05-01T10:00:05Z")])
    # An older update arriving late does not undo the newer state.
    store.save(1, [session("s1", "ok", "2024-05-01T10:00:02Z")])
    store.save(1, [session("s2", "crashed", "2024-05-01T10:00:03Z", errors=1)])
    store.save(1, [session("s3", "exited", "2024-05-01T10:00:03Z", errors=2)])
    store.save(
        1,
        [
            _item(
                "sessions",
                {
                    "attrs": {"release": "app@1", "environment": "prod"},
                    "aggregates": [{"started": "2024-05-01T10:00:00Z", "exited": 5, "crashed": 1}],
                },
            )
        ],
    )
    (health,) = queries.release_health(store)
    assert health["release"] == "app@1"
    assert health["sessions"] == 3 + 6
    assert health["crashed"] == 2
    assert health["errored"] == 1
    assert health["healthy"] == 1 + 5
    assert health["users"] == 3
    assert health["crash_free_rate"] == round(100 * 7 / 9, 2)


def test_check_ins_update_in_place_and_form_monitors(store):
    def check_in(status: str, duration: Any = None) -> Item:
        return _item(
            "check_in",
            {
                "check_in_id": "c" * 32,
                "monitor_slug": "nightly",
                "status": status,
                "duration": duration,
                "monitor_config": {"schedule": {"type": "crontab", "value": "0 3 * * *"}},
            },
        )

    store.save(1, [check_in("in_progress")])
    store.save(1, [check_in("ok", 2.5)])
    (monitor,) = queries.monitors(store)
    assert monitor["slug"] == "nightly"
    assert monitor["last_status"] == "ok"
    assert monitor["counts"] == {"ok": 1}
    assert monitor["check_ins"][0]["duration"] == 2.5
    assert monitor["config"]["schedule"]["value"] == "0 3 * * *"


def test_transactions_become_trace_waterfalls(store):
    store.save(
        1,
        [
            _item(
                "transaction",
                {
                    "event_id": "t" * 32,
                    "type": "transaction",
                    "transaction": "GET /",
                    "start_timestamp": 100.0,
                    "timestamp": 101.0,
                    "contexts": {
                        "trace": {"trace_id": "f" * 32, "span_id": "a" * 16, "op": "http.server"}
                    },
                    "spans": [
                        {
                            "span_id": "b" * 16,
                            "parent_span_id": "a" * 16,
                            "op": "db",
                            "description": "SELECT 1",
                            "start_timestamp": 100.1,
                            "timestamp": 100.3,
                        },
                        {
                            "span_id": "c" * 16,
                            "parent_span_id": "b" * 16,
                            "op": "db.fetch",
                            "start_timestamp": 100.2,
                            "timestamp": 100.25,
                        },
                    ],
                },
            )
        ],
    )
    (txn,) = queries.list_transactions(store)
    assert txn["name"] == "GET /"
    assert txn["duration_ms"] == 1000.0
    trace = queries.get_trace(store, "f" * 32)
    assert [(s["op"], s["depth"]) for s in trace["spans"]] == [
        ("http.server", 0),
        ("db", 1),
        ("db.fetch", 2),
    ]
    assert trace["spans"][1]["offset_pct"] == pytest.approx(10.0)
    assert trace["spans"][1]["width_pct"] == pytest.approx(20.0)


def test_logs_client_reports_attachments_and_unknown_items(store):
    log = {
        "items": [
            {
                "timestamp": 5.0,
                "level": "warn",
                "body": "low stock",
                "trace_id": "1" * 32,
                "attributes": {
                    "sentry.release": {"value": "r1", "type": "string"},
                    "item": {"value": "pear", "type": "string"},
                },
            }
        ]
    }
    report = {
        "timestamp": 1.0,
        "discarded_events": [{"reason": "before_send", "category": "error", "quantity": 3}],
    }
    store.save(
        1,
        [
            _item("log", log),
            _item("client_report", report),
            Item("attachment", {"type": "attachment", "filename": "a.txt"}, b"hello"),
            Item("profile", {"type": "profile"}, b"{}"),
            Item("brand_new_type", {"type": "brand_new_type", "x": 1}, b"\x00\x01"),
        ],
        envelope_headers={"event_id": "9" * 32},
    )
    (entry,) = queries.list_logs(store)
    assert entry["body"] == "low stock"
    assert entry["release"] == "r1"
    assert entry["attributes"]["item"] == "pear"
    assert queries.list_logs(store, level="error") == []
    assert queries.outcomes(store)["outcomes"] == [
        {"source": "client", "reason": "before_send", "category": "error", "quantity": 3}
    ]
    (attachment,) = queries.attachments_for(store, 1, "9" * 32)
    stored = queries.get_attachment(store, attachment["id"])
    assert stored is not None
    assert stored["data"] == b"hello"
    kept = {i["type"]: i for i in queries.raw_items(store)}
    assert set(kept) == {"profile", "brand_new_type"}
    assert kept["brand_new_type"]["headers"]["x"] == 1
    assert kept["brand_new_type"]["size"] == 2


_WRITER = textwrap.dedent(
    """
    import json, sys
    from tripwire.server.store import Store
    from tripwire.server.store import StoredItem as Item
    store = Store(sys.argv[1])
    for i in range(int(sys.argv[3])):
        event = {"event_id": "%s%030d" % (sys.argv[2], i), "message": "from %s" % sys.argv[2]}
        store.save(1, [Item("event", {"type": "event"}, json.dumps(event).encode())])
    store.close()
    """
)


def test_several_processes_write_one_database_without_losing_any(tmp_path):
    path = tmp_path / "shared.db"
    Store(path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag, "40"])
        for tag in ("p1", "p2", "p3")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    with Store(path) as store:
        assert queries.stats(store)["events"] == 120
        assert sorted(i["count"] for i in queries.list_issues(store)) == [40, 40, 40]


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40)))
def test_parse_timestamp_never_raises(value):
    assert isinstance(parse_timestamp(value, 7.0), float)


def test_parse_timestamp_formats():
    assert parse_timestamp("1970-01-01T00:00:10Z", 0.0) == 10.0
    assert parse_timestamp("1970-01-01T00:00:10.5+00:00", 0.0) == 10.5
    assert parse_timestamp("1970-01-01T01:00:10+01:00", 0.0) == 10.0
    assert parse_timestamp("1970-01-01 00:00:10.123456", 0.0) == pytest.approx(10.123456)
    assert parse_timestamp(12.5, 0.0) == 12.5
    assert parse_timestamp("yesterday", 3.0) == 3.0
    assert parse_timestamp(float("nan"), 3.0) == 3.0
