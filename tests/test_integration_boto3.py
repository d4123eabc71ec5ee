"""The boto3 integration: real boto3/botocore against a loopback S3 + SQS endpoint.

AWS itself cannot run here: `fakes.aws` answers the S3 (REST/XML) and SQS (JSON)
calls over HTTP on 127.0.0.1, and botocore signs, sends and parses as against AWS.
The differential test runs one script on sentry_sdk 2.75 and on tripwire, each in its
own interpreter, against the same server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import of_type, run_both
from fakes.aws import AwsServer, serving

import tripwire
from tripwire.integrations.boto3 import Boto3Integration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import boto3
    import botocore.client
    import botocore.config


@pytest.fixture(autouse=True, scope="module")
def _boto3() -> None:
    """boto3 is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global boto3, botocore
    import boto3
    import botocore.client
    import botocore.config


@pytest.fixture(scope="session")
def aws() -> Iterator[AwsServer]:
    with serving() as srv:
        yield srv


@pytest.fixture
def server(aws: AwsServer) -> AwsServer:
    aws.received.clear()
    aws.raw_headers.clear()
    return aws


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    options.setdefault("integrations", [Boto3Integration()])
    tripwire.init(transport=memory, default_integrations=False, **options)
    return memory


def clients(server: AwsServer) -> tuple[Any, Any]:
    session = boto3.session.Session(
        aws_access_key_id="a", aws_secret_access_key="b", region_name="eu-west-1"
    )
    return (
        session.client("s3", endpoint_url=server.url),
        session.client("sqs", endpoint_url=server.url),
    )


def aws_spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    (transaction,) = memory.transactions
    return [s for s in transaction["spans"] if s["origin"] == "auto.http.boto3"]


def no_thread(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith("thread.")}


def test_calls_get_spans_breadcrumbs_and_signed_trace_headers(server: AwsServer) -> None:
    memory = init(traces_sample_rate=1.0)
    s3, sqs = clients(server)
    port = server.server_address[1]
    with tripwire.start_transaction(name="tx", op="test") as transaction:
        s3.put_object(Bucket="bucket", Key="k", Body=b"hello")
        sqs.send_message(QueueUrl=server.url + "/q", MessageBody="m")
        tripwire.capture_message("after")

    put, send = aws_spans(memory)
    assert put["op"] == send["op"] == "http.client"
    assert (put["description"], send["description"]) == ("aws.s3.PutObject", "aws.sqs.SendMessage")
    assert put["parent_span_id"] == transaction.span_id
    assert put["tags"] == {"aws.service_id": "s3", "aws.operation_name": "PutObject"}
    assert "status" not in put or put["status"] is None
    assert list(no_thread(put["data"]).items()) == [
        ("rpc.method", "PutObject"),
        ("rpc.system.name", "aws-api"),
        ("sentry.kind", "client"),
        ("rpc.service", "S3"),
        ("cloud.region", "eu-west-1"),
        ("server.address", "127.0.0.1"),
        ("server.port", port),
        ("aws.request.url", f"{server.url}/bucket/k"),
        ("http.query", ""),
        ("http.fragment", ""),
        ("http.method", "PUT"),
        ("http.response.status_code", 200),
        ("aws.request_id", "REQ123"),
        ("aws.extended_request_id", "HOST456"),
    ]
    assert send["data"]["aws.request_id"] == "SQS789"
    assert send["data"]["rpc.service"] == "SQS"

    (event,) = memory.events
    crumbs = [c for c in event["breadcrumbs"]["values"] if "aws.request.url" in c["data"]]
    assert [(c["category"], c["type"], c["data"]["http.method"]) for c in crumbs] == [
        ("httplib", "http", "PUT"),
        ("httplib", "http", "POST"),
    ]
    # The headers were added before signing: AWS checks them with the signature.
    for headers, raw, span in zip(server.received, server.raw_headers, (put, send)):
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert "sentry-trace" in signed.split(";")
        traces = [v for k, v in raw if k == "sentry-trace"]
        assert traces == [f"{transaction.trace_id}-{span['span_id']}-1"]
        assert headers["baggage"].startswith(f"sentry-trace_id={transaction.trace_id},")


def test_streaming_body_keeps_the_span_open_until_read(server: AwsServer) -> None:
    memory = init(traces_sample_rate=1.0)
    s3, _ = clients(server)
    s3.put_object(Bucket="bucket", Key="big", Body=b"x" * 1000)
    with tripwire.start_transaction(name="tx"):
        body = s3.get_object(Bucket="bucket", Key="big")["Body"]
        with tripwire.start_span(op="between"):
            pass
        assert body.read(10) == b"x" * 10
        assert body.read() == b"x" * 990
        unread = s3.get_object(Bucket="bucket", Key="big")["Body"]
        unread.close()

    (transaction,) = memory.transactions
    spans = transaction["spans"]
    first, second = (s for s in spans if s["op"] == "http.client")
    streams = [s for s in spans if s["op"] == "http.client.stream"]
    (between,) = (s for s in spans if s["op"] == "between")
    assert [s["parent_span_id"] for s in streams] == [first["span_id"], second["span_id"]]
    assert all(s["origin"] == "auto.http.boto3" for s in streams)
    # The call's span ended after the body was read, not when the call returned.
    assert first["timestamp"] >= between["timestamp"]
    assert first["timestamp"] >= streams[0]["timestamp"]
    # ...and the span created in between was not its child: it was no longer active.
    assert between["parent_span_id"] == transaction["contexts"]["trace"]["span_id"]
    assert second["timestamp"] >= streams[1]["timestamp"]


def test_a_failed_call_ends_internal_error_with_the_aws_error_code(server: AwsServer) -> None:
    memory = init(traces_sample_rate=1.0)
    s3, _ = clients(server)
    with tripwire.start_transaction(name="tx"):
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket="bucket", Key="missing")
        tripwire.capture_message("after")

    (span,) = aws_spans(memory)
    assert span["status"] == "internal_error"
    assert span["tags"]["status"] == "internal_error"
    assert span["data"]["error.type"] == "NoSuchKey"
    assert span["data"]["http.response.status_code"] == 404
    (event,) = memory.events
    (crumb,) = [c for c in event["breadcrumbs"]["values"] if "aws.request.url" in c["data"]]
    assert crumb["data"]["aws.request.url"] == f"{server.url}/bucket/missing"


def test_outside_a_transaction_breadcrumbs_and_the_propagation_context(server: AwsServer) -> None:
    memory = init()  # no tracing: the scope's propagation context is sent
    s3, _ = clients(server)
    s3.list_buckets()
    tripwire.capture_message("after")
    trace_id = tripwire.get_current_scope().get_trace_context()["trace_id"]
    (headers,) = server.received
    assert headers["sentry-trace"].startswith(trace_id + "-")
    (event,) = memory.events
    assert [c["data"]["aws.request.url"] for c in event["breadcrumbs"]["values"]] == [
        server.url + "/"
    ]
    assert memory.transactions == []


def test_presigned_urls_carry_no_trace_headers(server: AwsServer) -> None:
    init(traces_sample_rate=1.0)
    session = boto3.session.Session(
        aws_access_key_id="a", aws_secret_access_key="b", region_name="eu-west-1"
    )
    s3 = session.client(
        "s3", endpoint_url=server.url, config=botocore.config.Config(signature_version="s3v4")
    )
    with tripwire.start_transaction(name="tx"):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "k"})
    signed = re.search(r"X-Amz-SignedHeaders=([^&]*)", url)
    assert signed is not None and signed.group(1) == "host"
    assert server.received == []


def test_a_signed_request_carries_one_sentry_trace(server: AwsServer) -> None:
    from tripwire.integrations.stdlib import StdlibIntegration

    init(traces_sample_rate=1.0, integrations=[Boto3Integration(), StdlibIntegration()])
    s3, _ = clients(server)
    with tripwire.start_transaction(name="tx"):
        s3.list_buckets()
    (raw,) = server.raw_headers
    assert [k for k, _ in raw].count("sentry-trace") == 1


def test_inactive_without_the_integration_and_reset_undoes_the_patch(server: AwsServer) -> None:
    init(traces_sample_rate=1.0)
    assert getattr(botocore.client.BaseClient._make_api_call, "__tripwire_boto3__", False)
    memory = init(traces_sample_rate=1.0, integrations=[])
    s3, _ = clients(server)
    with tripwire.start_transaction(name="tx"):
        s3.list_buckets()
        tripwire.capture_message("after")
    assert aws_spans(memory) == []
    assert "sentry-trace" not in server.received[0]
    reset()
    assert not getattr(botocore.client.BaseClient._make_api_call, "__tripwire_boto3__", False)


_SCRIPT = """
import boto3
from sentry_sdk.integrations.boto3 import Boto3Integration
from sentry_sdk.integrations.stdlib import StdlibIntegration

URL = {url!r}
sentry_sdk.init(
    dsn="https://key@o1.ingest.sentry.io/1",
    transport=KEEP,
    traces_sample_rate=1.0,
    default_integrations=False,
    integrations=[Boto3Integration(), StdlibIntegration()],
)
session = boto3.session.Session(
    aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
)
s3 = session.client("s3", endpoint_url=URL)
sqs = session.client("sqs", endpoint_url=URL)
with sentry_sdk.start_transaction(name="tx", op="test"):
    s3.put_object(Bucket="diff", Key="k", Body=b"hello")
    s3.get_object(Bucket="diff", Key="k")["Body"].read()
    try:
        s3.get_object(Bucket="diff", Key="missing")
    except Exception:
        pass
    sqs.send_message(QueueUrl=URL + "/q", MessageBody="m")
    s3.list_buckets()
    sentry_sdk.capture_message("after")
finish()
"""


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    (transaction,) = of_type(found, "transaction")
    ids = {transaction["contexts"]["trace"]["span_id"]: "root"}
    spans = []
    for index, span in enumerate(transaction["spans"]):
        ids[span["span_id"]] = str(index)
    for span in transaction["spans"]:
        spans.append(
            {
                "op": span["op"],
                "description": span["description"],
                "origin": span["origin"],
                "status": span.get("status"),
                "parent": ids.get(span["parent_span_id"]),
                "tags": {k: str(v) for k, v in (span.get("tags") or {}).items()},
                "data": list(no_thread(span.get("data") or {}).items()),
            }
        )
    (event,) = of_type(found, "event")
    crumbs = [
        {k: v for k, v in c.items() if k != "timestamp"} for c in event["breadcrumbs"]["values"]
    ]
    return {"spans": spans, "crumbs": crumbs}


def test_same_as_sentry_sdk(server: AwsServer, tmp_path: Path) -> None:
    sentry, ours = run_both(_SCRIPT.format(url=server.url), tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    # put, get (+ stream), missing, send, list: and an http.client span under each.
    assert len([s for s in found["spans"] if s["origin"] == "auto.http.boto3"]) == 6
    assert len(found["crumbs"]) == 10
