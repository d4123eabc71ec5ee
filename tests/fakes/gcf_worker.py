"""The shape of Google Cloud Functions' Python 3.7 worker (``worker_v1``), to run as is.

sentry_sdk's ``GcpIntegration`` wraps ``__main__.worker_v1.FunctionHandler
.invoke_user_function``: that runtime's worker was the process's main module and
called the user's function through it, with the Flask request of an HTTP function.
Google no longer ships it (its newer runtimes are ``functions-framework``, which
sentry_sdk does not instrument), so this module is that shape: a `FunctionHandler`
whose `invoke_user_function(event)` calls the function, behind a real Flask app served
on 127.0.0.1 (an exception becomes a 500, as the worker answered). A script that
imports it as ``worker_v1`` into ``__main__`` and calls `serve` is the runtime.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import flask
from werkzeug.serving import make_server


class FunctionHandler:
    """Calls the user's function for one event (the method the SDKs wrap)."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def invoke_user_function(self, event: Any) -> Any:
        return self.function(event)


def serve(function: Callable[[Any], Any]) -> None:
    """Serve `function` as an HTTP Cloud Function on a free loopback port (printed)."""
    app = flask.Flask("function")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def run(path: str) -> Any:
        # The module attribute, looked up per call: the SDK patches the class.
        handler = FunctionHandler(function)
        try:
            result = handler.invoke_user_function(flask.request)
        except Exception as exc:
            return flask.Response(json.dumps({"error": repr(exc)}), status=500)
        return flask.Response(json.dumps(result), mimetype="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=False)
    sys.stdout.write(f"{server.server_port}\n")
    sys.stdout.flush()
    server.serve_forever()
