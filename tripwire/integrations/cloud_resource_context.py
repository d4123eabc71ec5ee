"""Cloud resource context: where the process runs, from the cloud's metadata service.

As sentry_sdk 2.75's ``cloudresourcecontext`` integration: at set-up (once per process)
the provider is taken from ``cloud_provider`` ("aws" or "gcp"; another value sets
nothing) or detected (an EC2
instance answers the IMDSv2 token request; a GCP instance answers the metadata
request with ``Metadata-Flavor: Google``), and its metadata becomes the
``cloud_resource`` context of the isolation scope: ``cloud.provider``,
``cloud.platform``, ``cloud.account.id``, ``cloud.availability_zone``,
``cloud.region``, ``host.id`` (and ``host.type`` on AWS). Outside a cloud nothing is
set. Each request waits at most `HTTP_TIMEOUT` seconds; any failure is logged at
debug level and ends the detection, never the application.

The requests go through the class attribute ``http`` (a urllib3 `PoolManager`, as in
sentry_sdk), which may be replaced (e.g. by a `ProxyManager`).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import urllib3

from tripwire._log import logger
from tripwire.api import set_context
from tripwire.integrations import Integration

CONTEXT_TYPE = "cloud_resource"

HTTP_TIMEOUT = 2.0

AWS_METADATA_HOST = "169.254.169.254"
AWS_TOKEN_URL = f"http://{AWS_METADATA_HOST}/latest/api/token"
AWS_METADATA_URL = f"http://{AWS_METADATA_HOST}/latest/dynamic/instance-identity/document"

GCP_METADATA_HOST = "metadata.google.internal"
GCP_METADATA_URL = f"http://{GCP_METADATA_HOST}/computeMetadata/v1/?recursive=true"


class CLOUD_PROVIDER:  # sentry_sdk's name
    """Cloud provider names (OpenTelemetry's ``cloud.provider`` values)."""

    ALIBABA = "alibaba_cloud"
    AWS = "aws"
    AZURE = "azure"
    GCP = "gcp"
    IBM = "ibm_cloud"
    TENCENT = "tencent_cloud"


class CLOUD_PLATFORM:  # sentry_sdk's name
    """Cloud platform names (OpenTelemetry's ``cloud.platform`` values)."""

    AWS_EC2 = "aws_ec2"
    AWS_LAMBDA = "aws_lambda"
    GCP_COMPUTE_ENGINE = "gcp_compute_engine"


# Metadata keys -> context keys; a key the service does not send is left out.
_AWS_FIELDS = (
    ("accountId", "cloud.account.id"),
    ("availabilityZone", "cloud.availability_zone"),
    ("region", "cloud.region"),
    ("instanceId", "host.id"),
    ("instanceType", "host.type"),
)


class CloudResourceContextIntegration(Integration):
    """Sets the ``cloud_resource`` context from the cloud's metadata service.

    Args:
        cloud_provider: "aws" or "gcp" to skip detection ("" detects; anything else
            is warned about and sets nothing, as in sentry_sdk 2.75).
    """

    identifier = "cloudresourcecontext"

    cloud_provider = ""
    aws_token = ""
    http: Any = urllib3.PoolManager(timeout=HTTP_TIMEOUT)
    gcp_metadata: Any = None

    def __init__(self, cloud_provider: str = "") -> None:
        CloudResourceContextIntegration.cloud_provider = cloud_provider

    @classmethod
    def _request(cls, method: str, url: str, headers: dict[str, str]) -> Any:
        return cls.http.request(method, url, headers=headers)

    @classmethod
    def _is_aws(cls) -> bool:
        try:
            response = cls._request(
                "PUT", AWS_TOKEN_URL, {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
            )
            if response.status != 200:
                return False
            cls.aws_token = response.data.decode()
            return True
        except Exception as exc:
            _failed("checking the AWS metadata service", exc)
            return False

    @classmethod
    def _get_aws_context(cls) -> dict[str, str]:
        context = {"cloud.provider": CLOUD_PROVIDER.AWS, "cloud.platform": CLOUD_PLATFORM.AWS_EC2}
        try:
            response = cls._request(
                "GET", AWS_METADATA_URL, {"X-aws-ec2-metadata-token": cls.aws_token}
            )
            if response.status != 200:
                return context
            document = json.loads(response.data.decode("utf-8"))
            for field, key in _AWS_FIELDS:
                try:
                    context[key] = document[field]
                except Exception:
                    pass
        except Exception as exc:
            _failed("fetching AWS metadata", exc)
        return context

    @classmethod
    def _fetch_gcp(cls) -> Any:
        response = cls._request("GET", GCP_METADATA_URL, {"Metadata-Flavor": "Google"})
        if response.status != 200:
            return None
        cls.gcp_metadata = json.loads(response.data.decode("utf-8"))
        return cls.gcp_metadata

    @classmethod
    def _is_gcp(cls) -> bool:
        try:
            return cls._fetch_gcp() is not None
        except Exception as exc:
            _failed("checking the GCP metadata service", exc)
            return False

    @classmethod
    def _get_gcp_context(cls) -> dict[str, str]:
        context = {
            "cloud.provider": CLOUD_PROVIDER.GCP,
            "cloud.platform": CLOUD_PLATFORM.GCP_COMPUTE_ENGINE,
        }
        try:
            metadata = cls.gcp_metadata
            if metadata is None:
                metadata = cls._fetch_gcp()
                if metadata is None:
                    return context
            for key, read in _GCP_FIELDS:
                try:
                    context[key] = read(metadata)
                except Exception:
                    pass
        except Exception as exc:
            _failed("fetching GCP metadata", exc)
        return context

    @classmethod
    def _get_cloud_provider(cls) -> str:
        if cls._is_aws():
            return CLOUD_PROVIDER.AWS
        if cls._is_gcp():
            return CLOUD_PROVIDER.GCP
        return ""

    @classmethod
    def _get_cloud_resource_context(cls) -> dict[str, str]:
        provider = cls.cloud_provider or cls._get_cloud_provider()
        getter = context_getters.get(provider)
        return getter() if getter is not None else {}

    @staticmethod
    def setup_once() -> None:
        """Detect the cloud and set the ``cloud_resource`` context (once per process)."""
        cls = CloudResourceContextIntegration
        if cls.cloud_provider != "" and cls.cloud_provider not in context_getters:
            # As sentry_sdk 2.75: no detection then, and no context.
            logger.warning(
                "Invalid value for cloud_provider: %s (must be in %s); no cloud context is set.",
                cls.cloud_provider,
                list(context_getters),
            )
        try:
            context = cls._get_cloud_resource_context()
        except Exception as exc:  # a replaced `http` that misbehaves
            _failed("detecting the cloud", exc)
            return
        if context:
            set_context(CONTEXT_TYPE, context)


def _last_part(value: str) -> str:
    # GCP names zones and regions by path: "projects/123/zones/us-central1-a".
    return value.split("/")[-1]


_GCP_FIELDS: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("cloud.account.id", lambda m: m["project"]["projectId"]),
    ("cloud.availability_zone", lambda m: _last_part(m["instance"]["zone"])),
    ("cloud.region", lambda m: _last_part(m["instance"]["region"])),  # Cloud Run only
    ("host.id", lambda m: m["instance"]["id"]),
)


def _failed(what: str, exc: Exception) -> None:
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        logger.debug("Cloud metadata service timed out after %s seconds", HTTP_TIMEOUT)
    else:
        logger.debug("Error %s: %s", what, exc)


# The supported providers -> the function that reads their context.
context_getters: dict[str, Callable[[], dict[str, str]]] = {
    CLOUD_PROVIDER.AWS: CloudResourceContextIntegration._get_aws_context,
    CLOUD_PROVIDER.GCP: CloudResourceContextIntegration._get_gcp_context,
}

__all__ = ["CLOUD_PLATFORM", "CLOUD_PROVIDER", "CloudResourceContextIntegration"]
