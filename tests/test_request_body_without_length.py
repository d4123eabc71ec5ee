"""Request bodies without a Content-Length (chunked), read as sentry-sdk 2.75 reads them.

sentry-sdk's WSGI frameworks read the body whatever the length says: a chunked JSON
body is sent, and under ``max_request_body_size="never"`` every request (an empty GET
too) carries an empty body marked removed by the configuration. Observed with
sentry-sdk 2.75 on this Flask app when the test was written.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask
import pytest
from _receiver import Receiver
from werkzeug.serving import make_server

import tripwire
from tripwire.integrations.flask import FlaskIntegration


def make_app() -> flask.Flask:
    app = flask.Flask("bodies")

    @app.route("/p", methods=["GET", "POST"])
    def p() -> None:
        flask.request.get_data()
        raise KeyError("x")

    return app


@contextmanager
def served(app: flask.Flask) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def chunked_post(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/p")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", "application/json")
        connection.endheaders()
        connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def plain_get(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/p")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("small", [({"a": 1}, None), (None, None)]),
        (
            "never",
            [
                ("", {"data": {"": {"rem": [["!config", "x"]]}}}),
                ("", {"data": {"": {"rem": [["!config", "x"]]}}}),
            ],
        ),
    ],
)
def test_a_chunked_body_and_an_empty_one(rx: Receiver, limit: str, expected: Any) -> None:
    tripwire.get_client().close()
    tripwire.init(
        dsn=rx.dsn(),
        integrations=[FlaskIntegration()],
        default_integrations=False,
        max_request_body_size=limit,
    )
    try:
        with served(make_app()) as port:
            assert chunked_post(port, b'{"a": 1}') == 500
            tripwire.flush()
            assert plain_get(port) == 500
            tripwire.flush()
    finally:
        tripwire.get_client().close()
    found = [(e["request"].get("data"), e.get("_meta", {}).get("request")) for e in rx.events()]
    assert found == expected
