"""The cloud resource context: detection against a loopback fake metadata service.

The integration's requests go through its ``http`` pool, here a urllib3 `ProxyManager`
to a loopback server that answers as EC2's or GCP's metadata service would (it
sees the real metadata URLs, as a proxy does). The differential test runs one
script on sentry_sdk 2.75 and on tripwire with the same fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from _side_by_side import run
from fakes.cloud_metadata import Metadata, serving

import tripwire
from tripwire.integrations.cloud_resource_context import CloudResourceContextIntegration
from tripwire.testing import MemoryTransport

TESTS = str(Path(__file__).parent)


@pytest.fixture
def metadata(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Metadata]:
    with serving(request.param) as server:
        cls = CloudResourceContextIntegration
        pool = urllib3.ProxyManager(server.proxy, timeout=2.0)
        monkeypatch.setattr(cls, "http", pool)
        for name, value in (("cloud_provider", ""), ("aws_token", ""), ("gcp_metadata", None)):
            monkeypatch.setattr(cls, name, value)
        try:
            yield server
        finally:
            pool.clear()


def init(**kwargs: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[CloudResourceContextIntegration(**kwargs)],
    )
    tripwire.capture_message("hi")
    return memory


@pytest.mark.parametrize("metadata", ["aws"], indirect=True)
def test_aws(metadata: Metadata) -> None:
    (event,) = init().events
    assert event["contexts"]["cloud_resource"] == {
        "cloud.provider": "aws",
        "cloud.platform": "aws_ec2",
        "cloud.account.id": "298817902971",
        "cloud.availability_zone": "us-east-1b",
        "cloud.region": "us-east-1",
        "host.id": "i-07d3301297fe0a55a",
        "host.type": "t2.small",
    }
    (put, get) = metadata.seen
    assert put[:2] == ("PUT", "http://169.254.169.254/latest/api/token")
    assert put[2]["X-aws-ec2-metadata-token-ttl-seconds"] == "60"
    assert get[2]["X-aws-ec2-metadata-token"] == "token-1"


@pytest.mark.parametrize("metadata", ["gcp"], indirect=True)
def test_gcp_detected_after_aws_said_no(metadata: Metadata) -> None:
    (event,) = init().events
    assert event["contexts"]["cloud_resource"] == {
        "cloud.provider": "gcp",
        "cloud.platform": "gcp_compute_engine",
        "cloud.account.id": "proj-1",
        "cloud.availability_zone": "us-central1-a",
        "host.id": 1234,
    }
    # The detection's answer is reused: one request to GCP.
    assert [seen[0] for seen in metadata.seen] == ["PUT", "GET"]


@pytest.mark.parametrize("metadata", ["gcp"], indirect=True)
def test_provider_given_skips_detection(metadata: Metadata) -> None:
    (event,) = init(cloud_provider="gcp").events
    assert event["contexts"]["cloud_resource"]["cloud.account.id"] == "proj-1"
    assert [seen[0] for seen in metadata.seen] == ["GET"]


@pytest.mark.parametrize("metadata", ["none"], indirect=True)
def test_no_cloud_no_context(metadata: Metadata) -> None:
    (event,) = init().events
    assert "cloud_resource" not in event["contexts"]
    assert len(metadata.seen) == 2


@pytest.mark.parametrize("metadata", ["aws"], indirect=True)
def test_unknown_provider_sets_nothing(metadata: Metadata) -> None:
    (event,) = init(cloud_provider="azure").events
    assert "cloud_resource" not in event["contexts"]
    assert metadata.seen == []


def test_unreachable_service_sets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that refuses connections: every request fails at once.
    monkeypatch.setattr(
        CloudResourceContextIntegration,
        "http",
        urllib3.ProxyManager("http://127.0.0.1:9", timeout=2.0, retries=False),
    )
    monkeypatch.setattr(CloudResourceContextIntegration, "cloud_provider", "")
    (event,) = init().events
    assert "cloud_resource" not in event["contexts"]


_SCRIPT = """
import sys
import urllib3

sys.path.insert(0, TESTS)
from fakes.cloud_metadata import serving
from sentry_sdk.integrations.cloud_resource_context import CloudResourceContextIntegration

with serving(CLOUD) as server:
    CloudResourceContextIntegration.http = urllib3.ProxyManager(server.proxy, timeout=2.0)
    sentry_sdk.init(
        transport=KEEP, integrations=[CloudResourceContextIntegration(cloud_provider=PROVIDER)]
    )
    sentry_sdk.capture_message("hi")
    NOTES.extend([command, path] for command, path, _ in server.seen)
    finish()
"""


@pytest.mark.parametrize(
    ("cloud", "provider"),
    [("aws", ""), ("gcp", ""), ("none", ""), ("gcp", "gcp"), ("gcp", "azure")],
)
def test_same_as_sentry_sdk(cloud: str, provider: str, tmp_path: Path) -> None:
    script = f"CLOUD, PROVIDER, TESTS = {cloud!r}, {provider!r}, {TESTS!r}\n" + _SCRIPT
    found = {sdk: run(script, sdk, tmp_path) for sdk in ("sentry", "tripwire")}
    for sdk in found:
        (item,) = found[sdk]["items"]
        found[sdk]["context"] = item["payload"]["contexts"].get("cloud_resource")
    assert found["tripwire"]["notes"] == found["sentry"]["notes"]
    assert found["tripwire"]["context"] == found["sentry"]["context"]
    assert (found["tripwire"]["context"] is None) == (cloud == "none" or provider == "azure")
