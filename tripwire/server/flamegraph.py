"""Flame graphs of stored profiles: one transaction's, and a transaction name's aggregate.

Two sources, as SDKs send them (tripwire's and sentry_sdk's alike):

- a ``profile`` item (sample format v1) rides in the transaction's envelope: it is
  stored under the envelope's event id, and its samples are the transaction's, timed
  from its start; the flame graph shows the transaction's active thread;
- ``profile_chunk`` items (v2, continuous profiling) carry wall-clock samples of a
  profiler session; a transaction names the session in its ``profile`` context
  (``profiler_id``) and its thread in the trace context's ``thread.id``: its flame
  graph is that thread's samples of the session's chunks between its start and end.
  A chunk is sent at most a minute after its samples, so only chunks received from
  the transaction's start to `CHUNK_DELAY` seconds after its end are read.

Profiles can be big (an item may hold 50 MiB): a request parses at most
`MAX_PARSE_BYTES` of payloads (an aggregate reads the newest transactions first and
says when it stopped early), each chunk once; the tree keeps at most `MAX_NODES`
frames and the SVG only the frames wide enough to see. Everything in a profile is
untrusted: it reaches the page through Jinja2's autoescaping.
"""

from __future__ import annotations

import bisect
import json
import time
import zlib
from typing import Any, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tripwire.server.limits import MiB
from tripwire.server.store import Store

# Payload bytes one request parses at most (profiles and chunks together).
MAX_PARSE_BYTES = 64 * MiB
# Frames (tree nodes) kept per flame graph; past it, new call paths are not added.
MAX_NODES = 20_000
# Transactions an aggregate looks at (the newest in the range first).
MAX_TRANSACTIONS = 500
# Seconds after a transaction's end within which its chunks have arrived.
CHUNK_DELAY = 180.0
# The SVG: its width in user units, a row's height, the narrowest frame drawn.
WIDTH = 1200.0
ROW = 18
MIN_WIDTH = 0.5
MAX_DEPTH = 256

PERIODS = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}


class Budget:
    """Bytes of payload a request may still parse."""

    __slots__ = ("exceeded", "left")

    def __init__(self, limit: Optional[int] = None) -> None:
        self.left = MAX_PARSE_BYTES if limit is None else limit
        self.exceeded = False

    def take(self, size: int) -> bool:
        if size > self.left:
            self.exceeded = True
            return False
        self.left -= size
        return True


class Node:
    """A frame in a call path: samples through it (`value`) and in it (`self_value`)."""

    __slots__ = ("children", "frame", "self_value", "value")

    def __init__(self, frame: tuple[str, str, str, bool]) -> None:
        self.frame = frame  # (function, module or file, file, in_app)
        self.value = 0
        self.self_value = 0
        self.children: dict[tuple[str, str, str, bool], Node] = {}


class Tree:
    """Stacks merged by call path, bounded by `MAX_NODES`."""

    def __init__(self) -> None:
        self.root = Node(("all", "", "", False))
        self.nodes = 0
        self.truncated = False

    def add(self, path: list[tuple[str, str, str, bool]], weight: int = 1) -> None:
        """Add a stack, outermost frame first."""
        node = self.root
        node.value += weight
        for frame in path[:MAX_DEPTH]:
            child = node.children.get(frame)
            if child is None:
                if self.nodes >= MAX_NODES:
                    self.truncated = True
                    break
                child = node.children[frame] = Node(frame)
                self.nodes += 1
            child.value += weight
            node = child
        node.self_value += weight


# -- reading profiles ---------------------------------------------------------------------------


def _frame_key(frame: Any) -> tuple[str, str, str, bool]:
    if not isinstance(frame, dict):
        return ("<unknown>", "", "", False)
    function = frame.get("function")
    module = frame.get("module")
    path = frame.get("filename") or frame.get("abs_path") or ""
    return (
        str(function) if function else "<unknown>",
        str(module) if module else str(path),
        str(path),
        frame.get("in_app") is True,
    )


class Profile:
    """The frames, stacks and samples of one parsed payload (v1 or v2)."""

    __slots__ = ("paths", "profiler_id", "samples", "times", "transactions")

    def __init__(self, payload: dict[str, Any]) -> None:
        body = payload.get("profile")
        body = body if isinstance(body, dict) else {}
        frames = [_frame_key(f) for f in _list(body.get("frames"))]
        paths: list[Optional[list[tuple[str, str, str, bool]]]] = []
        for stack in _list(body.get("stacks")):
            # innermost first on the wire; indices out of range are skipped
            indices = reversed(_list(stack))
            count = len(frames)
            paths.append([frames[i] for i in indices if isinstance(i, int) and 0 <= i < count])
        self.paths = paths
        # (time, thread id, stack id), sorted by time: seconds since the epoch for v2,
        # nanoseconds since the transaction's start for v1.
        samples = []
        for sample in _list(body.get("samples")):
            if not isinstance(sample, dict):
                continue
            stack_id = sample.get("stack_id")
            if not isinstance(stack_id, int) or not 0 <= stack_id < len(paths):
                continue
            when = _number(sample.get("timestamp", sample.get("elapsed_since_start_ns")))
            if when is None:
                continue
            samples.append((when, str(sample.get("thread_id")), stack_id))
        samples.sort(key=lambda s: s[0])
        self.samples = samples
        self.times = [s[0] for s in samples]
        self.transactions = [t for t in _list(payload.get("transactions")) if isinstance(t, dict)]
        profiler_id = payload.get("profiler_id")
        self.profiler_id = profiler_id if isinstance(profiler_id, str) else None

    def _window(self, start: Optional[float], end: Optional[float]) -> list[tuple[float, str, int]]:
        lo = 0 if start is None else bisect.bisect_left(self.times, start)
        hi = len(self.times) if end is None else bisect.bisect_right(self.times, end)
        return self.samples[lo:hi]

    def threads(self, start: float, end: float) -> set[str]:
        """The threads sampled from `start` to `end`."""
        return {tid for _when, tid, _stack in self._window(start, end)}

    def has_thread(self, thread: str, start: float, end: float) -> bool:
        """Whether `thread` was sampled from `start` to `end`."""
        return any(tid == thread for _when, tid, _stack in self._window(start, end))

    def add_to(
        self,
        tree: Tree,
        thread: Optional[str],
        start: Optional[float] = None,
        end: Optional[float] = None,
    ) -> int:
        """Add the samples of `thread` (any when None) from `start` to `end`; how many."""
        added = 0
        for _when, tid, stack_id in self._window(start, end):
            if thread is not None and tid != thread:
                continue
            tree.add(self.paths[stack_id] or [])
            added += 1
        return added


class Loader:
    """Finds and parses the payloads one request needs, each once, within a budget."""

    def __init__(self, store: Store, budget: Optional[Budget] = None) -> None:
        self.conn = store.connection()
        self.budget = budget or Budget()
        self._parsed: dict[int, Optional[Profile]] = {}

    def _load(self, item_id: int, size: int) -> Optional[Profile]:
        if item_id in self._parsed:
            return self._parsed[item_id]
        found: Optional[Profile] = None
        if self.budget.take(size):
            row = self.conn.execute("SELECT payload FROM items WHERE id = ?", (item_id,)).fetchone()
            payload = _parse(row[0]) if row is not None else None
            found = Profile(payload) if isinstance(payload, dict) else None
        self._parsed[item_id] = found
        return found

    def transaction_profile(self, tx: dict[str, Any]) -> Optional[Profile]:
        """The ``profile`` item sent with the transaction."""
        row = self.conn.execute(
            "SELECT id, length(payload) FROM items WHERE project_id = ? AND type = 'profile' "
            "AND event_id = ? ORDER BY id DESC LIMIT 1",
            (tx["project_id"], tx["event_id"]),
        ).fetchone()
        return None if row is None else self._load(row[0], row[1])

    def chunks(self, project_id: int, profiler_id: str, start: float, end: float) -> list[Profile]:
        """The session's chunks that may hold samples from `start` to `end`."""
        rows = self.conn.execute(
            "SELECT id, length(payload) FROM items WHERE project_id = ? "
            "AND type = 'profile_chunk' AND received BETWEEN ? AND ? ORDER BY id",
            (project_id, start - 1.0, end + CHUNK_DELAY),
        ).fetchall()
        found = []
        for item_id, size in rows:
            chunk = self._load(item_id, size)
            if chunk is not None and chunk.profiler_id == profiler_id:
                found.append(chunk)
        return found

    def add_transaction(self, tree: Tree, tx: dict[str, Any]) -> tuple[Optional[str], int]:
        """Add the transaction's samples to `tree`: (source, samples added)."""
        data = _dict(tx.get("data"))
        contexts = _dict(data.get("contexts"))
        profile = self.transaction_profile(tx)
        if profile is not None:
            thread = None
            for entry in profile.transactions:
                if entry.get("id") in (tx["event_id"], None) or len(profile.transactions) == 1:
                    active = entry.get("active_thread_id")
                    thread = None if active is None else str(active)
                    break
            return "profile", profile.add_to(tree, thread)
        profiler_id = _dict(contexts.get("profile")).get("profiler_id")
        if not isinstance(profiler_id, str):
            return None, 0
        thread_id = _dict(_dict(contexts.get("trace")).get("data")).get("thread.id")
        thread = None if thread_id is None else str(thread_id)
        start, end = tx["start_time"], tx["end_time"]
        chunks = self.chunks(tx["project_id"], profiler_id, start, end)
        if thread is not None and not any(c.has_thread(thread, start, end) for c in chunks):
            # An id the samples do not use (a greenlet's under gevent): if one thread
            # was sampled meanwhile, it is the transaction's.
            threads = set().union(*(c.threads(start, end) for c in chunks))
            thread = threads.pop() if len(threads) == 1 else thread
        added = 0
        for chunk in chunks:
            added += chunk.add_to(tree, thread, start, end)
        return "profile_chunk", added


def has_profile(store: Store, tx: dict[str, Any]) -> bool:
    """Whether a flame graph may exist for this stored transaction (cheap: no payload read)."""
    data = _dict(tx.get("data"))
    if isinstance(_dict(_dict(data.get("contexts")).get("profile")).get("profiler_id"), str):
        return True
    row = (
        store.connection()
        .execute(
            "SELECT 1 FROM items WHERE project_id = ? AND type = 'profile' AND event_id = ?",
            (tx.get("project_id"), tx.get("event_id")),
        )
        .fetchone()
    )
    return row is not None


def transaction_flamegraph(store: Store, tx: dict[str, Any]) -> dict[str, Any]:
    """One stored transaction's flame graph (`tx` as `queries.get_transaction` returns it)."""
    loader = Loader(store)
    tree = Tree()
    source, samples = loader.add_transaction(tree, tx)
    return {
        "event_id": tx["event_id"],
        "name": tx["name"],
        "source": source,
        "samples": samples,
        "truncated": tree.truncated,
        "partial": loader.budget.exceeded,
        "tree": tree,
    }


def aggregate_flamegraph(
    store: Store, name: str, start: float, end: float, project_id: Optional[int] = None
) -> dict[str, Any]:
    """The flame graph of every profiled transaction named `name` started in the range."""
    sql = (
        "SELECT event_id, project_id, name, start_time, end_time, data FROM transactions "
        "WHERE name = ? AND start_time BETWEEN ? AND ?"
    )
    args: list[Any] = [name, start, end]
    if project_id is not None:
        sql += " AND project_id = ?"
        args.append(project_id)
    sql += " ORDER BY start_time DESC LIMIT ?"
    args.append(MAX_TRANSACTIONS + 1)
    rows = store.connection().execute(sql, args).fetchall()
    loader = Loader(store)
    tree = Tree()
    profiled = samples = 0
    for row in rows[:MAX_TRANSACTIONS]:
        if loader.budget.exceeded:
            break
        data = row["data"]
        if not loader.budget.take(len(data or "")):
            break
        tx = dict(row)
        tx["data"] = _parse(data)
        _source, added = loader.add_transaction(tree, tx)
        if added:
            profiled += 1
            samples += added
    return {
        "name": name,
        "start": start,
        "end": end,
        "transactions": min(len(rows), MAX_TRANSACTIONS),
        "profiled": profiled,
        "samples": samples,
        "truncated": tree.truncated,
        "partial": loader.budget.exceeded or len(rows) > MAX_TRANSACTIONS,
        "tree": tree,
    }


def profiled_names(store: Store, start: float, end: float, limit: int = 50) -> list[dict[str, Any]]:
    """Transaction names in the range, most frequent first (the aggregate page's menu)."""
    rows = store.connection().execute(
        "SELECT name, count(*) AS count FROM transactions WHERE start_time BETWEEN ? AND ? "
        "GROUP BY name ORDER BY count DESC, name LIMIT ?",
        (start, end, limit),
    )
    return [dict(row) for row in rows]


# -- output -------------------------------------------------------------------------------------


def tree_json(node: Node, total: int, min_fraction: float = 0.0) -> dict[str, Any]:
    """The tree as JSON; children under `min_fraction` of the whole are left out."""
    function, module, path, in_app = node.frame
    out: dict[str, Any] = {
        "function": function,
        "module": module,
        "filename": path,
        "in_app": in_app,
        "value": node.value,
        "self": node.self_value,
    }
    limit = total * min_fraction
    kids = sorted(node.children.values(), key=lambda n: -n.value)
    out["children"] = [tree_json(c, total, min_fraction) for c in kids if c.value >= limit]
    return out


def focus(tree: Tree, path: str) -> tuple[Node, list[Node]]:
    """The node a ``focus`` parameter names (child indices by weight: "0.2.1"), and its parents."""
    node = tree.root
    parents: list[Node] = []
    for part in path.split(".") if path else ():
        kids = sorted(node.children.values(), key=lambda n: -n.value)
        if not part.isdigit() or int(part) >= len(kids):
            break
        parents.append(node)
        node = kids[int(part)]
    return node, parents


def layout(node: Node, parents: list[Node], focus_path: str) -> dict[str, Any]:
    """Rectangles of the SVG: the focused node's parents on top, full width, then its subtree."""
    rects: list[dict[str, Any]] = []
    total = node.value or 1
    prefix = focus_path.split(".") if focus_path else []
    for depth, parent in enumerate(parents):
        rects.append(_rect(parent, 0.0, WIDTH, depth, ".".join(prefix[:depth]), total, True))
    base = len(parents)
    stack: list[tuple[Node, float, int, str]] = [(node, 0.0, base, focus_path)]
    scale = WIDTH / total
    while stack:
        current, x, depth, key = stack.pop()
        width = current.value * scale
        rects.append(_rect(current, x, width, depth, key, node.value, False))
        if depth - base >= MAX_DEPTH:
            continue
        child_x = x
        kids = sorted(current.children.values(), key=lambda n: -n.value)
        for i, child in enumerate(kids):
            child_width = child.value * scale
            if child_width >= MIN_WIDTH:
                stack.append((child, child_x, depth + 1, f"{key}.{i}" if key else str(i)))
            child_x += child_width
    height = (max((r["depth"] for r in rects), default=0) + 1) * ROW
    for r in rects:
        r["y"] = r["depth"] * ROW
    return {"rects": rects, "width": WIDTH, "height": height}


def _rect(
    node: Node, x: float, width: float, depth: int, key: str, total: int, parent: bool
) -> dict[str, Any]:
    function, module, _path, in_app = node.frame
    chars = int((width - 6) / 7)
    label = (
        function if len(function) <= chars else (function[: chars - 1] + "…" if chars > 2 else "")
    )
    pct = 100.0 * node.value / total if total else 0.0
    title = f"{function} ({module})" if module else function
    return {
        "x": round(x, 2),
        "width": round(max(width - 0.5, 0.1), 2),
        "depth": depth,
        "label": label,
        "title": f"{title} · {node.value} samples ({pct:.1f}%), {node.self_value} self",
        "fill": _color(module, in_app, parent),
        "focus": key,
    }


def _color(module: str, in_app: bool, parent: bool) -> str:
    if parent or not module:  # the focused frame's parents, the root
        return "hsl(0, 0%, 82%)"
    h = zlib.crc32(module.split(".", 1)[0].encode("utf-8", "replace"))
    if in_app:
        return f"hsl({200 + h % 40}, 70%, {68 + (h >> 8) % 12}%)"
    return f"hsl({10 + h % 40}, 85%, {60 + (h >> 8) % 15}%)"


def top_functions(tree: Tree, limit: int = 20) -> list[dict[str, Any]]:
    """Functions by samples spent in them (self), then through them (total)."""
    own: dict[tuple[str, str, str, bool], list[int]] = {}
    stack: list[tuple[Node, frozenset[Any]]] = [
        (c, frozenset()) for c in tree.root.children.values()
    ]
    while stack:
        node, seen = stack.pop()
        counts = own.setdefault(node.frame, [0, 0])
        counts[0] += node.self_value
        if node.frame not in seen:  # recursion counts once in the total
            counts[1] += node.value
        inner = seen | {node.frame}
        stack.extend((c, inner) for c in node.children.values())
    total = tree.root.value or 1
    ranked = sorted(own.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))[:limit]
    return [
        {
            "function": frame[0],
            "module": frame[1],
            "self": counts[0],
            "total": counts[1],
            "self_pct": 100.0 * counts[0] / total,
            "total_pct": 100.0 * counts[1] / total,
        }
        for frame, counts in ranked
    ]


# -- helpers ------------------------------------------------------------------------------------


def _parse(raw: Any) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def time_range(request: Request, now: Optional[float] = None) -> tuple[float, float, str]:
    """``start``/``end`` (seconds since the epoch) or ``period`` (1h, 24h, 7d, 30d)."""
    now = time.time() if now is None else now
    params = request.query_params
    period = params.get("period") or "24h"
    if period not in PERIODS:
        period = "24h"
    end = _number(params.get("end"))
    start = _number(params.get("start"))
    if end is None:
        end = now
    if start is None:
        start = end - PERIODS[period]
    if params.get("start") or params.get("end"):
        period = ""
    return start, end, period


# -- handlers -----------------------------------------------------------------------------------


def _store(request: Request) -> Store:
    store: Store = request.app.state.tripwire.store
    return store


def _transaction(request: Request) -> Optional[dict[str, Any]]:
    from tripwire.server import queries

    return queries.get_transaction(_store(request), request.path_params["event_id"])


def transaction_page(request: Request) -> Response:
    """``/transactions/<event_id>/flamegraph/``: the transaction's profile as a flame graph."""
    from tripwire.server.web import render

    tx = _transaction(request)
    if tx is None:
        return render(
            request, "error.html", status_code=404, message="No such transaction.", nav="traces"
        )
    graph = transaction_flamegraph(_store(request), tx)
    return _render_graph(request, graph, tx=tx)


def aggregate_page(request: Request) -> Response:
    """``/flamegraph/?transaction=<name>&period=24h``: a transaction name's aggregate."""
    from tripwire.server.web import render

    store = _store(request)
    start, end, period = time_range(request)
    name = request.query_params.get("transaction", "")
    if not name:
        return render(
            request,
            "flamegraph.html",
            graph=None,
            names=profiled_names(store, start, end),
            period=period,
            periods=list(PERIODS),
            start=start,
            end=end,
            nav="traces",
        )
    graph = aggregate_flamegraph(store, name, start, end)
    return _render_graph(request, graph, period=period, start=start, end=end)


def _render_graph(request: Request, graph: dict[str, Any], **context: Any) -> Response:
    from tripwire.server.web import render

    tree: Tree = graph["tree"]
    focus_path = request.query_params.get("focus", "")
    node, parents = focus(tree, focus_path)
    kept = ".".join(focus_path.split(".")[: len(parents)]) if parents else ""
    return render(
        request,
        "flamegraph.html",
        graph=graph,
        svg=layout(node, parents, kept) if tree.root.value else None,
        top=top_functions(tree),
        focused=kept,
        periods=list(PERIODS),
        nav="traces",
        **context,
    )


def _json(graph: dict[str, Any], **extra: Any) -> Response:
    tree: Tree = graph.pop("tree")
    graph["root"] = tree_json(tree.root, tree.root.value, 0.0)
    graph.update(extra)
    return JSONResponse(graph)


def transaction_api(request: Request) -> Response:
    """``GET /api/0/transactions/<event_id>/flamegraph/``."""
    tx = _transaction(request)
    if tx is None:
        return JSONResponse({"detail": "transaction not found"}, status_code=404)
    return _json(transaction_flamegraph(_store(request), tx))


def aggregate_api(request: Request) -> Response:
    """``GET /api/0/flamegraph/?transaction=<name>&start=&end=`` (or ``period=``)."""
    name = request.query_params.get("transaction", "")
    if not name:
        return JSONResponse({"detail": "transaction (a name) is required"}, status_code=400)
    start, end, _period = time_range(request)
    project = request.query_params.get("project")
    project_id = int(project) if project and project.isdigit() else None
    return _json(aggregate_flamegraph(_store(request), name, start, end, project_id))


web_routes = [
    Route("/transactions/{event_id}/flamegraph/", transaction_page),
    Route("/flamegraph/", aggregate_page),
]
api_routes = [
    Route("/transactions/{event_id}/flamegraph/", transaction_api),
    Route("/flamegraph/", aggregate_api),
]
