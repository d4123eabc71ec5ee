"""The schema of the local backend's SQLite store: tables, version and migrations.

`SCHEMA_VERSION` is what ``PRAGMA user_version`` holds once `tripwire.server.store.Store`
has applied `MIGRATIONS` to a file; `SchemaError` is how it refuses one it cannot use.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SchemaError"]

SCHEMA_VERSION = 4

# MIGRATIONS[n] upgrades a database at version n to n + 1 (version 0 is a new file).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE issues (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        hash TEXT NOT NULL,
        title TEXT NOT NULL,
        culprit TEXT NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL,
        level TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'unresolved',
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        times_seen INTEGER NOT NULL,
        last_event_id TEXT NOT NULL,
        UNIQUE (project_id, hash)
    );
    CREATE INDEX issues_last_seen ON issues (project_id, last_seen);
    CREATE TABLE events (
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        issue_id INTEGER NOT NULL,
        received REAL NOT NULL,
        timestamp REAL NOT NULL,
        level TEXT NOT NULL,
        title TEXT NOT NULL,
        release TEXT,
        environment TEXT,
        platform TEXT,
        transaction_name TEXT,
        trace_id TEXT,
        user_key TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (project_id, event_id)
    );
    CREATE INDEX events_issue ON events (issue_id, timestamp);
    CREATE INDEX events_trace ON events (trace_id);
    CREATE TABLE issue_users (
        issue_id INTEGER NOT NULL,
        user_key TEXT NOT NULL,
        PRIMARY KEY (issue_id, user_key)
    ) WITHOUT ROWID;
    CREATE TABLE transactions (
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        received REAL NOT NULL,
        trace_id TEXT,
        span_id TEXT,
        name TEXT NOT NULL,
        op TEXT,
        status TEXT,
        start_time REAL NOT NULL,
        end_time REAL NOT NULL,
        release TEXT,
        environment TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (project_id, event_id)
    );
    CREATE INDEX transactions_start ON transactions (project_id, start_time);
    CREATE INDEX transactions_trace ON transactions (trace_id);
    CREATE TABLE spans (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        transaction_event_id TEXT,
        is_segment INTEGER NOT NULL,
        op TEXT,
        description TEXT,
        status TEXT,
        start_time REAL NOT NULL,
        end_time REAL NOT NULL,
        data TEXT
    );
    CREATE INDEX spans_trace ON spans (trace_id, start_time);
    CREATE TABLE sessions (
        project_id INTEGER NOT NULL,
        sid TEXT NOT NULL,
        did TEXT,
        release TEXT NOT NULL,
        environment TEXT,
        status TEXT NOT NULL,
        errors INTEGER NOT NULL,
        started REAL NOT NULL,
        timestamp REAL NOT NULL,
        duration REAL,
        PRIMARY KEY (project_id, sid)
    );
    CREATE TABLE session_aggregates (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        release TEXT NOT NULL,
        environment TEXT,
        started REAL NOT NULL,
        exited INTEGER NOT NULL,
        errored INTEGER NOT NULL,
        abnormal INTEGER NOT NULL,
        crashed INTEGER NOT NULL
    );
    CREATE TABLE check_ins (
        project_id INTEGER NOT NULL,
        check_in_id TEXT NOT NULL,
        monitor_slug TEXT NOT NULL,
        status TEXT NOT NULL,
        duration REAL,
        environment TEXT,
        release TEXT,
        received REAL NOT NULL,
        monitor_config TEXT,
        PRIMARY KEY (project_id, check_in_id)
    );
    CREATE INDEX check_ins_slug ON check_ins (project_id, monitor_slug, received);
    CREATE TABLE logs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        timestamp REAL NOT NULL,
        level TEXT NOT NULL,
        severity_number INTEGER,
        body TEXT NOT NULL,
        trace_id TEXT,
        release TEXT,
        environment TEXT,
        attributes TEXT NOT NULL
    );
    CREATE INDEX logs_timestamp ON logs (project_id, timestamp);
    CREATE INDEX logs_trace ON logs (trace_id);
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        event_id TEXT,
        filename TEXT NOT NULL,
        content_type TEXT,
        attachment_type TEXT,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX attachments_event ON attachments (project_id, event_id);
    CREATE TABLE outcomes (
        id INTEGER PRIMARY KEY,
        project_id INTEGER,
        source TEXT NOT NULL,
        received REAL NOT NULL,
        reason TEXT NOT NULL,
        category TEXT NOT NULL,
        quantity INTEGER NOT NULL
    );
    CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        project_id INTEGER,
        received REAL NOT NULL,
        status INTEGER NOT NULL,
        reason TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        received REAL NOT NULL,
        event_id TEXT,
        type TEXT NOT NULL,
        headers TEXT NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE INDEX items_type ON items (project_id, type);
    """,
    # 2: triage. How an issue came to its status (resolved in the next release, ignored
    # until a time or a count of events), regressions, an activity log per issue, and
    # the tags seen on its events (for ``key:value`` search), filled from the events
    # already stored.
    """
    ALTER TABLE issues ADD COLUMN substatus TEXT;
    ALTER TABLE issues ADD COLUMN status_changed REAL;
    ALTER TABLE issues ADD COLUMN in_next_release INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE issues ADD COLUMN resolved_release TEXT;
    ALTER TABLE issues ADD COLUMN ignore_until REAL;
    ALTER TABLE issues ADD COLUMN ignore_until_count INTEGER;
    ALTER TABLE issues ADD COLUMN regressed_at REAL;
    CREATE INDEX issues_status ON issues (project_id, status, last_seen);
    CREATE TABLE issue_activity (
        id INTEGER PRIMARY KEY,
        issue_id INTEGER NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX issue_activity_issue ON issue_activity (issue_id, at);
    CREATE TABLE issue_tags (
        issue_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        times_seen INTEGER NOT NULL,
        PRIMARY KEY (issue_id, key, value)
    ) WITHOUT ROWID;
    CREATE INDEX issue_tags_key_value ON issue_tags (key, value);
    INSERT INTO issue_tags (issue_id, key, value, times_seen)
        SELECT e.issue_id, substr(t.key, 1, 200), substr(CAST(t.value AS TEXT), 1, 200), count(*)
        FROM events e, json_each(e.data, '$.tags') t
        WHERE json_valid(e.data) AND json_type(e.data, '$.tags') = 'object'
            AND t.type IN ('text', 'integer', 'real')
        GROUP BY 1, 2, 3;
    INSERT INTO issue_tags (issue_id, key, value, times_seen)
        SELECT e.issue_id, substr(json_extract(t.value, '$[0]'), 1, 200),
            substr(CAST(json_extract(t.value, '$[1]') AS TEXT), 1, 200), count(*)
        FROM events e, json_each(e.data, '$.tags') t
        WHERE json_valid(e.data) AND json_type(e.data, '$.tags') = 'array'
            AND t.type = 'array' AND json_array_length(t.value) = 2
            AND json_type(t.value, '$[0]') = 'text'
            AND json_type(t.value, '$[1]') IN ('text', 'integer', 'real')
        GROUP BY 1, 2, 3
        ON CONFLICT (issue_id, key, value) DO UPDATE
        SET times_seen = times_seen + excluded.times_seen;
    INSERT INTO issue_tags (issue_id, key, value, times_seen)
        SELECT issue_id, 'release', substr(release, 1, 200), count(*) FROM events
        WHERE release IS NOT NULL GROUP BY 1, 3
        ON CONFLICT (issue_id, key, value) DO UPDATE SET times_seen = excluded.times_seen;
    INSERT INTO issue_tags (issue_id, key, value, times_seen)
        SELECT issue_id, 'environment', substr(environment, 1, 200), count(*) FROM events
        WHERE environment IS NOT NULL GROUP BY 1, 3
        ON CONFLICT (issue_id, key, value) DO UPDATE SET times_seen = excluded.times_seen;
    INSERT INTO issue_tags (issue_id, key, value, times_seen)
        SELECT issue_id, 'level', substr(level, 1, 200), count(*) FROM events WHERE true
        GROUP BY 1, 3
        ON CONFLICT (issue_id, key, value) DO UPDATE SET times_seen = excluded.times_seen;
    UPDATE issues SET status_changed = first_seen WHERE status != 'unresolved'
    """,
    # 3: the envelope inspector: envelopes as received (bounded; see `inspector`), and
    # when attachments arrived (retention prunes by it; older rows go with their event).
    """
    ALTER TABLE attachments ADD COLUMN received REAL;
    CREATE TABLE envelopes (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        received REAL NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        item_types TEXT NOT NULL,
        headers TEXT NOT NULL,
        items TEXT NOT NULL,
        outcome TEXT NOT NULL,
        kept INTEGER NOT NULL
    );
    CREATE INDEX events_received ON events (received);
    CREATE INDEX transactions_received ON transactions (received)
    """,
    # 4: streamed spans (``span`` items, `tripwire.server.spans`) are rows of ``spans``
    # without a transaction: indexes to list their segments and to prune them (and the
    # spans of a transaction, which the traces list counts), and the v2 span items
    # stored as raw items until now become spans.
    """
    CREATE INDEX spans_segments ON spans (start_time)
        WHERE is_segment = 1 AND transaction_event_id IS NULL;
    CREATE INDEX spans_streamed_end ON spans (end_time) WHERE transaction_event_id IS NULL;
    CREATE INDEX spans_transaction ON spans (transaction_event_id);
    INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, transaction_event_id,
        is_segment, op, description, status, start_time, end_time, data)
        SELECT i.project_id, lower(json_extract(s.value, '$.trace_id')),
            lower(json_extract(s.value, '$.span_id')),
            lower(json_extract(s.value, '$.parent_span_id')),
            (SELECT t.event_id FROM transactions t
                WHERE t.project_id = i.project_id
                AND t.trace_id = lower(json_extract(s.value, '$.trace_id'))
                AND t.span_id = json_extract(s.value, '$.attributes."sentry.segment.id".value')
                LIMIT 1),
            coalesce(json_type(s.value, '$.is_segment') = 'true', 0),
            json_extract(s.value, '$.attributes."sentry.op".value'),
            json_extract(s.value, '$.name'), json_extract(s.value, '$.status'),
            json_extract(s.value, '$.start_timestamp'),
            coalesce(json_extract(s.value, '$.end_timestamp'),
                json_extract(s.value, '$.start_timestamp')),
            (SELECT json_group_object(a.key, CASE json_type(a.value, '$.value')
                WHEN 'true' THEN json('true') WHEN 'false' THEN json('false')
                WHEN 'array' THEN json(json_extract(a.value, '$.value'))
                WHEN 'object' THEN json(json_extract(a.value, '$.value'))
                ELSE json_extract(a.value, '$.value') END)
                FROM json_each(s.value, '$.attributes') a WHERE json_type(a.value) = 'object')
        FROM (SELECT project_id, CAST(payload AS TEXT) AS text FROM items WHERE type = 'span') i,
            json_each(CASE WHEN json_valid(i.text) THEN i.text ELSE '{}' END, '$.items') s
        WHERE json_type(s.value) = 'object'
            AND length(json_extract(s.value, '$.trace_id')) = 32
            AND length(json_extract(s.value, '$.span_id')) = 16
            AND json_type(s.value, '$.start_timestamp') IN ('integer', 'real');
    DELETE FROM items WHERE type = 'span' AND json_valid(CAST(payload AS TEXT))
        AND json_type(CAST(payload AS TEXT), '$.items') = 'array'
    """,
]


class SchemaError(RuntimeError):
    """The database was written by a newer tripwire, or is not a tripwire database."""
