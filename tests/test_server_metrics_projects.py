"""The metrics page's series and charts, and projects from the CLI and on the lists.

Over real HTTP on 127.0.0.1: ``trace_metric`` items as the SDKs send them are
aggregated per type (counters summed, gauges last, distributions averaged) per
time bucket and split by the user's attributes; ``tripwire projects create``
prints a DSN that works at once; the issue list and the metrics page filter by
project.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire import cli
from tripwire.server import metrics_chart
from tripwire.server.app import ServerThread
from tripwire.server.store import Store

T0 = 1_700_000_000.0  # a multiple of 60: buckets start on it
SDK = {
    "sentry.sdk.name": {"type": "string", "value": "sentry.python"},
    "sentry.environment": {"type": "string", "value": "prod"},
    "server.address": {"type": "string", "value": "box"},
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(db=tmp_path / "metrics.db") as s:
        yield s


def send_metrics(server: ServerThread, values: list[dict[str, Any]], dsn: Optional[str] = None):
    parts = urlsplit(dsn or server.dsn)
    payload = json.dumps({"version": 2, "items": values}).encode()
    header = {
        "type": "trace_metric",
        "item_count": len(values),
        "content_type": "application/vnd.sentry.items.trace-metric+json",
        "length": len(payload),
    }
    body = b"\n".join([b"{}", json.dumps(header).encode(), payload]) + b"\n"
    request = urllib.request.Request(
        f"{server.url}/api{parts.path}/envelope/",
        data=body,
        headers={"X-Sentry-Auth": f"Sentry sentry_key={parts.username}, sentry_version=7"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def value(name: str, kind: str, number: Any, at: float, **attributes: Any) -> dict[str, Any]:
    attrs = {k: {"type": "string", "value": v} for k, v in attributes.items()}
    return {
        "timestamp": at,
        "name": name,
        "type": kind,
        "value": number,
        "trace_id": "a" * 32,
        "attributes": {**SDK, **attrs},
    }


def get(server: ServerThread, path: str) -> Any:
    with urllib.request.urlopen(server.url + path, timeout=30) as response:
        body = response.read()
        if response.headers["content-type"].startswith("application/json"):
            return json.loads(body)
        return body.decode()


def test_each_type_is_aggregated_as_it_means_per_bucket_and_split_by_the_apps_attributes(
    server,
):
    send_metrics(
        server,
        [
            # Counter: summed per bucket (buckets of 1 s: the values span 2 s).
            value("orders", "counter", 1, T0 + 0.1, region="eu"),
            value("orders", "counter", 2, T0 + 0.5, region="eu"),
            value("orders", "counter", 5, T0 + 1.2, region="eu"),
            value("orders", "counter", 4, T0 + 0.2, region="us"),
            # Gauge: the last value of the bucket.
            value("depth", "gauge", 9, T0 + 0.1),
            value("depth", "gauge", 3, T0 + 0.9),
            # Distribution: the average.
            value("latency", "distribution", 10, T0 + 0.1),
            value("latency", "distribution", 20, T0 + 0.3),
            value("latency", "distribution", 60, T0 + 1.9),
        ],
    )
    found = get(server, "/api/0/metrics/series/")
    by_name = {m["name"]: m for m in found["metrics"]}
    assert sorted(by_name) == ["depth", "latency", "orders"]
    orders = by_name["orders"]
    assert (orders["aggregate"], orders["step"], orders["count"], orders["sum"]) == (
        "sum",
        1,
        4,
        12.0,
    )
    # The SDK's attributes (sentry.*, server.address) do not split series; region does.
    assert [(s["label"], s["points"], s["total"]) for s in orders["series"]] == [
        ("region=eu", [[T0, 3.0], [T0 + 1, 5.0]], 8.0),
        ("region=us", [[T0, 4.0]], 4.0),
    ]
    (depth,) = by_name["depth"]["series"]
    assert (depth["label"], depth["points"]) == ("all values", [[T0, 3.0]])
    (latency,) = by_name["latency"]["series"]
    assert latency["points"] == [[T0, 15.0], [T0 + 1, 60.0]]
    assert latency["mean"] == 30.0  # the legend's column for a distribution
    assert (by_name["latency"]["min"], by_name["latency"]["max"]) == (10.0, 60.0)

    # Split by any attribute instead, the SDK's too; one metric by name.
    found = get(server, "/api/0/metrics/series/?name=orders&group=sentry.environment")
    (orders,) = found["metrics"]
    assert [(s["label"], s["total"]) for s in orders["series"]] == [
        ("sentry.environment=prod", 12.0)
    ]
    assert found["names"] == ["depth", "latency", "orders"]

    # The page draws what the API says: a polyline and a dot per bucket, per series.
    document = get(server, "/metrics/?name=orders")
    assert document.count('<g class="series"') == 2
    assert document.count("<circle ") == 3
    assert "region=eu: 5 (sum, 2023-11-14 22:13:21 UTC)" in document
    assert 'data-metric="latency"' not in document
    assert '<th class="num">Total</th>' in document
    latency_page = get(server, "/metrics/?name=latency")
    assert '<th class="num">Average</th>' in latency_page
    assert '<td class="num">30</td>' in latency_page
    assert document.count('<tr class="metric">') == 4


def test_labels_from_the_app_stay_text_and_odd_values_are_skipped(server):
    evil = '<script>alert(1)</script>"><svg onload=x>'
    send_metrics(
        server,
        [
            value(evil, "counter", 1, T0, **{evil: evil}),
            value("ok", "gauge", "NaN", T0),
            value("ok", "gauge", True, T0),
            value("ok", "gauge", 2.5, T0 + 3600 * 24 * 3),
            "not a metric",  # type: ignore[list-item]
        ],
    )
    document = get(server, "/metrics/")
    assert "<script>alert" not in document and "<svg onload" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    found = {m["name"]: m for m in get(server, "/api/0/metrics/series/")["metrics"]}
    ok = found["ok"]
    # Three values, one a number: one point, in the bucket of its time.
    assert (ok["count"], ok["sum"], ok["last"]) == (3, 2.5, 2.5)
    (((start, number),),) = [s["points"] for s in ok["series"]]
    assert number == 2.5 and start <= T0 + 3600 * 24 * 3 < start + ok["step"]


def test_series_beyond_the_palette_are_counted_not_drawn(server):
    send_metrics(
        server,
        [value("hits", "counter", 1, T0 + n, path=f"/p{n}") for n in range(11)],
    )
    (hits,) = get(server, "/api/0/metrics/series/")["metrics"]
    assert (len(hits["series"]), len(hits["chart"]["lines"]), hits["hidden_series"]) == (11, 8, 3)
    assert "3 more series not drawn" in get(server, "/metrics/")


def test_chart_geometry_fits_the_box():
    points = [(T0, 0.0), (T0 + 10, 7.0), (T0 + 20, 3.0)]
    series = [{"label": "a", "points": points}]
    drawn = metrics_chart.chart(series, 10, "sum", "ms")
    plot = drawn["plot"]
    for line in drawn["lines"]:
        for dot in line["dots"]:
            assert plot["x"] <= dot["x"] <= plot["x"] + plot["width"]
            assert plot["y"] <= dot["y"] <= plot["y"] + plot["height"]
    assert [t["label"] for t in drawn["y_ticks"]] == ["0", "2", "4", "6", "8"]
    assert drawn["caption"] == "sum per 10 s"
    assert metrics_chart.bucket_step(T0, T0 + 3000) == 60
    assert metrics_chart.bucket_step(T0, T0 + 0.5) == 1
    assert metrics_chart.nice_ticks(0, 0) == [0, 0.25, 0.5, 0.75, 1.0]
    assert metrics_chart.chart([], 1, "sum", "")["lines"] == []


def test_projects_from_the_cli_and_the_project_filters(server, capsys):
    assert cli.main(["projects", "create", "billing", "--url", server.url]) == 0
    dsn = capsys.readouterr().out.strip()
    assert dsn.startswith("http://") and dsn.endswith(f"@127.0.0.1:{server.port}/2")
    assert cli.main(["projects", "--url", server.url]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listed[1:]] == [["1", "default"], ["2", "billing"]]
    assert listed[2].split()[2] == dsn

    # The DSN works at once, and the lists filter by project.
    send_metrics(server, [value("invoices", "counter", 1, T0)], dsn=dsn)
    send_metrics(server, [value("orders", "counter", 1, T0)])
    billing = get(server, "/api/0/metrics/series/?project=2")
    assert [m["name"] for m in billing["metrics"]] == ["invoices"]
    page = get(server, "/metrics/?project=2")
    assert 'data-metric="invoices"' in page and 'data-metric="orders"' not in page
    assert '<option value="2" selected>billing</option>' in page

    for project_dsn, message in ((server.dsn, "in default"), (dsn, "in billing")):
        parts = urlsplit(project_dsn)
        body = b'{}\n{"type":"event"}\n' + json.dumps({"message": message}).encode()
        request = urllib.request.Request(
            f"{server.url}/api{parts.path}/envelope/",
            data=body,
            headers={"X-Sentry-Auth": f"Sentry sentry_key={parts.username}, sentry_version=7"},
        )
        urllib.request.urlopen(request, timeout=30).close()
    assert [i["title"] for i in get(server, "/api/0/issues/?project=2")] == ["in billing"]
    assert len(get(server, "/api/0/issues/")) == 2
    document = get(server, "/issues/?project=2")
    assert "in billing" in document and "in default" not in document
    # The DSN shown on an empty list is the chosen project's.
    empty = get(server, "/issues/?project=2&status=resolved")
    assert dsn in empty and "No resolved issues in billing." in empty
    # Logs too.
    for project_dsn, body in ((server.dsn, "default log"), (dsn, "billing log")):
        parts = urlsplit(project_dsn)
        log = {"items": [{"timestamp": T0, "level": "info", "body": body, "attributes": {}}]}
        payload = json.dumps(log).encode()
        header = {
            "type": "log",
            "item_count": 1,
            "content_type": "application/vnd.sentry.items.log+json",
        }
        request = urllib.request.Request(
            f"{server.url}/api{parts.path}/envelope/",
            data=b"{}\n" + json.dumps(header).encode() + b"\n" + payload + b"\n",
            headers={"X-Sentry-Auth": f"Sentry sentry_key={parts.username}, sentry_version=7"},
        )
        urllib.request.urlopen(request, timeout=30).close()
    assert [log["body"] for log in get(server, "/api/0/logs/?project=2")] == ["billing log"]
    assert len(get(server, "/api/0/logs/")) == 2
    logs_page = get(server, "/logs/?project=1")
    assert "default log" in logs_page and "billing log" not in logs_page
    assert '<option value="1" selected>default</option>' in logs_page
    # An unknown project is every project.
    assert len(get(server, "/issues/?project=99").split('<tr class="issue"')) == 3


def test_projects_cli_errors_and_database_mode(tmp_path, capsys):
    db = tmp_path / "offline.db"
    assert cli.main(["projects", "create", "--db", str(db)]) == 2
    assert "name the project" in capsys.readouterr().err
    assert cli.main(["projects", "create", " ", "--db", str(db)]) == 2
    assert "1 to 100 characters" in capsys.readouterr().err
    assert cli.main(["projects", "create", "jobs", "--db", str(db)]) == 0
    dsn = capsys.readouterr().out.strip()
    assert dsn.endswith("@127.0.0.1:8969/2")
    with Store(db) as store:
        assert [(p["id"], p["name"]) for p in store.projects()] == [(1, "default"), (2, "jobs")]
        key = store.projects()[1]["public_key"]
    assert urlsplit(dsn).username == key
    assert cli.main(["projects", "--db", str(db), "--json"]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)] == ["default", "jobs"]
    # No server there: said so, with the way out.
    with ServerThread(db=tmp_path / "gone.db") as gone:
        url = gone.url
    assert cli.main(["projects", "create", "x", "--url", url]) == 1
    assert "or pass --db" in capsys.readouterr().err


def test_the_project_api_refuses_other_sites(server):
    request = urllib.request.Request(
        f"{server.url}/api/0/projects/",
        data=b'{"name": "evil"}',
        headers={"Content-Type": "application/json", "Origin": "https://evil.example"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    refused.value.close()
    assert [p["name"] for p in get(server, "/api/0/projects/")] == ["default"]
