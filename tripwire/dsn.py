"""Parsing Sentry DSNs and deriving the ingest URLs and auth header from them."""

from __future__ import annotations

import functools
from typing import Optional, Union

from tripwire.consts import USER_AGENT

__all__ = ["BadDsn", "Dsn"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_DIGITS = frozenset("0123456789")
# Characters that can never be part of a host name; catching them early turns a
# copy/paste accident into a clear error instead of a DNS failure at send time.
_BAD_HOST_CHARS = frozenset("\\/@?#")
# Keys end up in the X-Sentry-Auth header, where a comma would split the value.
_BAD_KEY_CHARS = frozenset(",")
_NO_CHARS: frozenset[str] = frozenset()


class BadDsn(ValueError):
    """Raised when a DSN string is malformed; the message says what is wrong."""


def _has_bad_chars(text: str, bad: frozenset[str]) -> bool:
    # Whitespace and control characters are never valid in any DSN component.
    return any(ch <= " " or ch == "\x7f" or ch in bad for ch in text)


def _is_digits(text: str) -> bool:
    # str.isdigit() accepts non-ASCII digits ("٤٢"), which are not valid here.
    return bool(text) and all(ch in _DIGITS for ch in text)


class Dsn:
    """A parsed DSN: where to send events and with which key.

    Attributes:
        scheme: ``"http"`` or ``"https"``.
        public_key: The project's public key.
        secret_key: The legacy secret key, or None when the DSN has none.
        host: Host name (lowercase) or IP address; IPv6 without brackets.
        port: TCP port, the scheme's default when the DSN names none.
        path: Path prefix in front of ``/api/``: ``""`` or e.g. ``"/sub/path"``.
        project_id: Numeric project id, as a string.
    """

    # Hand-written rather than a frozen dataclass: importing dataclasses (and inspect)
    # cost more than the rest of init().
    __slots__ = ("host", "path", "port", "project_id", "public_key", "scheme", "secret_key")

    scheme: str
    public_key: str
    secret_key: Optional[str]
    host: str
    port: int
    path: str
    project_id: str

    def __init__(
        self,
        scheme: str,
        public_key: str,
        secret_key: Optional[str],
        host: str,
        port: int,
        path: str,
        project_id: str,
    ) -> None:
        for name, value in zip(
            self.__slots__, (host, path, port, project_id, public_key, scheme, secret_key)
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Dsn is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Dsn is immutable: cannot delete {name!r}")

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dsn):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Dsn(scheme={self.scheme!r}, public_key={self.public_key!r}, "
            f"secret_key={self.secret_key!r}, host={self.host!r}, port={self.port!r}, "
            f"path={self.path!r}, project_id={self.project_id!r})"
        )

    @classmethod
    def parse(cls, value: Union[str, bytes, Dsn]) -> Dsn:
        """Parse a DSN string or bytes (a Dsn is returned unchanged).

        Surrounding whitespace, a query string and a fragment are ignored, as is
        a single trailing slash after the project id.

        Raises:
            BadDsn: The string is not a valid DSN; the message names the problem.
            TypeError: ``value`` is neither a string nor a Dsn.
        """
        if isinstance(value, Dsn):
            return value
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            raise TypeError(f"DSN must be a string, got {type(value).__name__}")
        return _parse(value)

    @property
    def netloc(self) -> str:
        """``host[:port]``, the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != _DEFAULT_PORTS.get(self.scheme):
            return f"{host}:{self.port}"
        return host

    def endpoint_url(self, endpoint: str) -> str:
        """URL of an ingest endpoint of this project, e.g. ``"envelope"``."""
        return f"{self.scheme}://{self.netloc}{self.path}/api/{self.project_id}/{endpoint}/"

    @property
    def envelope_url(self) -> str:
        """URL envelopes are POSTed to."""
        return self.endpoint_url("envelope")

    @property
    def api_url(self) -> str:
        """Same as :attr:`envelope_url`, the default endpoint of sentry-sdk 2.x."""
        return self.endpoint_url("envelope")

    @property
    def store_url(self) -> str:
        """URL of the legacy single-event ``store`` endpoint."""
        return self.endpoint_url("store")

    @property
    def otlp_traces_url(self) -> str:
        """URL of the OTLP traces endpoint."""
        return self.endpoint_url("integration/otlp/v1/traces")

    @property
    def org_id(self) -> Optional[str]:
        """Organization id from a host like ``o123.ingest.sentry.io``, else None."""
        host = self.host
        if not host.startswith("o"):
            return None
        dot = host.find(".")
        digits = host[1:dot]
        return digits if dot > 1 and _is_digits(digits) else None

    def auth_header(
        self, client: Optional[str] = USER_AGENT, timestamp: Optional[float] = None
    ) -> str:
        """Value of the ``X-Sentry-Auth`` header.

        Args:
            client: SDK identifier sent as ``sentry_client``; None leaves it out.
            timestamp: Unix time to send as ``sentry_timestamp``; sentry-sdk 2.x
                sends none, which is the default.
        """
        parts = [f"sentry_key={self.public_key}", "sentry_version=7"]
        if timestamp is not None:
            parts.append(f"sentry_timestamp={int(timestamp)}")
        if client is not None:
            parts.append(f"sentry_client={client}")
        if self.secret_key is not None:
            parts.append(f"sentry_secret={self.secret_key}")
        return "Sentry " + ", ".join(parts)

    def __str__(self) -> str:
        auth = self.public_key
        if self.secret_key is not None:
            auth = f"{auth}:{self.secret_key}"
        return f"{self.scheme}://{auth}@{self.netloc}{self.path}/{self.project_id}"


@functools.lru_cache(maxsize=16)
def _parse(raw: str) -> Dsn:
    # Cached: init() and the client both parse the same string, and a Dsn is immutable.
    text = raw.strip()
    if not text:
        raise BadDsn("DSN is empty")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise BadDsn("DSN has no scheme: expected it to start with 'https://'")
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadDsn(f"Unsupported scheme {scheme!r} in DSN: expected 'http' or 'https'")
    # Query and fragment carry nothing for us; sentry-sdk ignores them too.
    for mark in "#?":
        rest = rest.partition(mark)[0]
    netloc, slash, path = rest.partition("/")

    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        raise BadDsn("DSN is missing the public key (expected 'https://KEY@host/PROJECT_ID')")
    public_key, colon, secret = userinfo.partition(":")
    if not public_key:
        raise BadDsn("DSN is missing the public key (expected 'https://KEY@host/PROJECT_ID')")
    secret_key = secret if colon else None
    if _has_bad_chars(userinfo, _BAD_KEY_CHARS):
        raise BadDsn("Invalid character in the DSN's key: check for stray spaces or commas")

    host, port_text = _split_host_port(hostport)
    if not host:
        raise BadDsn("DSN is missing the host name")
    if _has_bad_chars(host, _BAD_HOST_CHARS):
        raise BadDsn(f"Invalid host {host!r} in DSN")
    if port_text:
        if not _is_digits(port_text):
            raise BadDsn(f"Invalid port {port_text!r} in DSN: must be a number")
        port = int(port_text)
        if not 0 < port < 65536:
            raise BadDsn(f"Invalid port {port} in DSN: must be between 1 and 65535")
    else:
        port = _DEFAULT_PORTS[scheme]

    if not slash:
        raise BadDsn("DSN is missing the project id (expected 'https://KEY@host/PROJECT_ID')")
    if path.endswith("/"):
        path = path[:-1]
    prefix, _, project_id = f"/{path}".rpartition("/")
    if not project_id:
        raise BadDsn("DSN is missing the project id (expected 'https://KEY@host/PROJECT_ID')")
    if not _is_digits(project_id):
        raise BadDsn(f"Invalid project id {project_id!r} in DSN: must be numeric")
    if _has_bad_chars(prefix, _NO_CHARS):
        raise BadDsn(f"Invalid path {prefix!r} in DSN")
    return Dsn(
        scheme=scheme,
        public_key=public_key,
        secret_key=secret_key,
        host=host.lower(),
        port=port,
        path=prefix,
        project_id=project_id,
    )


def _split_host_port(hostport: str) -> tuple[str, str]:
    """Split ``host:port`` / ``[v6]:port`` into host and port text ("" when absent)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise BadDsn(f"Invalid IPv6 host {hostport!r} in DSN: missing ']'")
        after = hostport[end + 1 :]
        if after and not after.startswith(":"):
            raise BadDsn(f"Invalid host {hostport!r} in DSN")
        return hostport[1:end], after[1:]
    host, _, port = hostport.partition(":")
    if ":" in port:
        raise BadDsn(f"Invalid host {hostport!r} in DSN: put IPv6 addresses in brackets")
    return host, port
