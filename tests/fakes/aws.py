"""A loopback HTTP server answering the S3 and SQS calls the boto3 tests make.

Real botocore talks to it (``endpoint_url=server.url``): it signs, sends and parses
as it would against AWS. S3 is path-style REST/XML (buckets are dict keys); SQS is
the JSON protocol (``X-Amz-Target: AmazonSQS.<Operation>``). Every request's
headers are recorded, so tests can check the trace headers botocore sent.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    b"<Message>The specified key does not exist.</Message><RequestId>REQ404</RequestId>"
    b"</Error>"
)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer (flushed after each request): head and body in separate
    # segments would meet delayed ACKs, ~40 ms a request.
    wbufsize = -1

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _record(self) -> None:
        server: AwsServer = self.server  # type: ignore[assignment]
        server.received.append({k.lower(): v for k, v in self.headers.items()})
        server.raw_headers.append([(k.lower(), v) for k, v in self.headers.items()])

    def _s3_ids(self) -> dict[str, str]:
        return {"x-amz-request-id": "REQ123", "x-amz-id-2": "HOST456"}

    def do_PUT(self) -> None:
        self._record()
        server: AwsServer = self.server  # type: ignore[assignment]
        body = self._body()
        server.objects[self.path.split("?")[0]] = body
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        self._answer(200, b"", {**self._s3_ids(), "ETag": etag})

    def do_GET(self) -> None:
        self._record()
        server: AwsServer = self.server  # type: ignore[assignment]
        path = self.path.split("?")[0]
        if path == "/":
            listing = (
                b'<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult>'
                b"<Owner><ID>1</ID></Owner><Buckets><Bucket><Name>bucket</Name>"
                b"<CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>"
                b"</ListAllMyBucketsResult>"
            )
            self._answer(200, listing, {**self._s3_ids(), "Content-Type": "application/xml"})
            return
        body = server.objects.get(path)
        if body is None:
            self._answer(404, _NO_SUCH_KEY, {**self._s3_ids(), "Content-Type": "application/xml"})
            return
        self._answer(200, body, {**self._s3_ids(), "Content-Type": "binary/octet-stream"})

    def do_POST(self) -> None:
        self._record()
        body = self._body()
        target = self.headers.get("X-Amz-Target", "")
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "SQS789"}
        if target == "AmazonSQS.SendMessage":
            text = json.loads(body)["MessageBody"]
            answer = {
                "MessageId": str(uuid.uuid4()),
                "MD5OfMessageBody": hashlib.md5(text.encode()).hexdigest(),
            }
            self._answer(200, json.dumps(answer).encode(), headers)
            return
        error = {"__type": "com.amazonaws.sqs#InvalidAction", "message": target}
        self._answer(400, json.dumps(error).encode(), headers)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AwsServer(http.server.ThreadingHTTPServer):
    """The fake S3 + SQS endpoint: `objects` by path, `received` request headers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, bytes] = {}
        self.received: list[dict[str, str]] = []
        self.raw_headers: list[list[tuple[str, str]]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving() -> Iterator[AwsServer]:
    """A started `AwsServer`, shut down and joined on exit."""
    srv = AwsServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        srv.thread.join()


if __name__ == "__main__":  # serve for a side-by-side script: prints the URL
    import sys

    with serving() as running:
        sys.stdout.write(running.url + "\n")
        sys.stdout.flush()
        sys.stdin.read()
