"""A loopback fake of the cloud metadata services (EC2's IMDSv2, GCP's), met as a proxy.

The cloud resource context integration asks fixed addresses (169.254.169.254,
metadata.google.internal); a urllib3 `ProxyManager` pointed at this server sends it
those requests with their full URLs, as an HTTP proxy sees them. It answers as the
cloud given (``"aws"``, ``"gcp"``, anything else: 404) and records each request.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

AWS_TOKEN = "token-1"
AWS_DOCUMENT = {
    "accountId": "298817902971",
    "availabilityZone": "us-east-1b",
    "region": "us-east-1",
    "instanceId": "i-07d3301297fe0a55a",
    "instanceType": "t2.small",
}
GCP_METADATA = {
    "project": {"projectId": "proj-1"},
    "instance": {"zone": "projects/1/zones/us-central1-a", "id": 1234},
}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Metadata

    def _answer(self) -> None:
        cloud = self.server.cloud
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        status, body = 404, b"no"
        if cloud == "aws" and self.path == "http://169.254.169.254/latest/api/token":
            if self.command == "PUT":
                status, body = 200, AWS_TOKEN.encode()
        elif cloud == "aws" and self.path.startswith("http://169.254.169.254/latest/dynamic/"):
            if self.headers.get("X-aws-ec2-metadata-token") == AWS_TOKEN:
                status, body = 200, json.dumps(AWS_DOCUMENT).encode()
        elif cloud == "gcp" and self.path.startswith("http://metadata.google.internal/"):
            if self.headers.get("Metadata-Flavor") == "Google":
                status, body = 200, json.dumps(GCP_METADATA).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Metadata(http.server.ThreadingHTTPServer):
    """The fake; `proxy` is the URL to give a `ProxyManager`."""

    daemon_threads = True

    def __init__(self, cloud: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cloud = cloud
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(cloud: str) -> Iterator[Metadata]:
    """A started fake answering as `cloud`, shut down and joined on exit."""
    server = Metadata(cloud)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
