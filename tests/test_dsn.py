"""DSN parsing, derived URLs and the X-Sentry-Auth header."""

from __future__ import annotations

import subprocess
import sys
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tripwire.consts import USER_AGENT
from tripwire.dsn import BadDsn, Dsn

# (dsn, scheme, public_key, secret_key, host, port, path, project_id, netloc)
VALID = [
    (
        "https://key@o123.ingest.sentry.io/42",
        "https", "key", None, "o123.ingest.sentry.io", 443, "", "42", "o123.ingest.sentry.io",
    ),
    ("https://key:secret@host/1", "https", "key", "secret", "host", 443, "", "1", "host"),
    ("https://key:@host/1", "https", "key", "", "host", 443, "", "1", "host"),
    ("https://key@host/sub/path/42", "https", "key", None, "host", 443, "/sub/path", "42", "host"),
    ("https://key@host:8443/42", "https", "key", None, "host", 8443, "", "42", "host:8443"),
    ("https://key@host:443/42", "https", "key", None, "host", 443, "", "42", "host"),
    ("https://key@host:80/42", "https", "key", None, "host", 80, "", "42", "host:80"),
    ("http://key@host/42", "http", "key", None, "host", 80, "", "42", "host"),
    ("http://key@host:80/42", "http", "key", None, "host", 80, "", "42", "host"),
    ("http://key@host:443/42", "http", "key", None, "host", 443, "", "42", "host:443"),
    ("http://k@localhost:9000/3", "http", "k", None, "localhost", 9000, "", "3", "localhost:9000"),
    ("https://key@127.0.0.1/3", "https", "key", None, "127.0.0.1", 443, "", "3", "127.0.0.1"),
    ("https://key@[::1]/42", "https", "key", None, "::1", 443, "", "42", "[::1]"),
    ("https://key@[::1]:9000/42", "https", "key", None, "::1", 9000, "", "42", "[::1]:9000"),
    ("  https://key@host/42 \n", "https", "key", None, "host", 443, "", "42", "host"),
    ("HTTPS://k@HOST.Ex/42", "https", "k", None, "host.ex", 443, "", "42", "host.ex"),
    ("https://key@host/42?timeout=1#frag", "https", "key", None, "host", 443, "", "42", "host"),
    ("https://key@host:/42", "https", "key", None, "host", 443, "", "42", "host"),
    # A single trailing slash is tolerated (sentry-sdk rejects it; see test below).
    ("https://key@host/42/", "https", "key", None, "host", 443, "", "42", "host"),
    ("https://key@host/sub/42/", "https", "key", None, "host", 443, "/sub", "42", "host"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("dsn", "scheme", "public_key", "secret_key", "host", "port", "path", "project_id", "netloc"),
    VALID,
)
def test_parse_fields(
    dsn: str,
    scheme: str,
    public_key: str,
    secret_key: Optional[str],
    host: str,
    port: int,
    path: str,
    project_id: str,
    netloc: str,
) -> None:
    parsed = Dsn.parse(dsn)
    assert parsed == Dsn(scheme, public_key, secret_key, host, port, path, project_id)
    assert parsed.netloc == netloc
    assert parsed.envelope_url == f"{scheme}://{netloc}{path}/api/{project_id}/envelope/"
    assert parsed.api_url == parsed.envelope_url
    assert parsed.store_url == f"{scheme}://{netloc}{path}/api/{project_id}/store/"
    # The canonical string parses back to the same DSN.
    assert Dsn.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("dsn", "canonical"),
    [
        ("https://key@host/42", "https://key@host/42"),
        ("https://key:secret@host/1", "https://key:secret@host/1"),
        ("https://key@host:443/42", "https://key@host/42"),
        ("http://key@host:8080/sub/42/", "http://key@host:8080/sub/42"),
        ("  HTTPS://key@[::1]:9000/42?x=1 ", "https://key@[::1]:9000/42"),
    ],
)
def test_str_is_canonical(dsn: str, canonical: str) -> None:
    assert str(Dsn.parse(dsn)) == canonical


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("key@host/42", "no scheme"),
        ("ftp://key@host/42", "Unsupported scheme 'ftp'"),
        ("https://host/42", "missing the public key"),
        ("https://@host/42", "missing the public key"),
        ("https://:secret@host/42", "missing the public key"),
        ("https://key@/42", "missing the host"),
        ("https://key@:80/42", "missing the host"),
        ("https://key@host:abc/42", "Invalid port 'abc'"),
        ("https://key@host:0/42", "Invalid port 0"),
        ("https://key@host:99999/42", "Invalid port 99999"),
        ("https://key@host:-1/42", "Invalid port '-1'"),
        ("https://key@host", "missing the project id"),
        ("https://key@host/", "missing the project id"),
        ("https://key@host/sub/", "Invalid project id 'sub'"),
        ("https://key@host/abc", "Invalid project id 'abc'"),
        ("https://key@host/1.5", "Invalid project id '1.5'"),
        ("https://key@host/-1", "Invalid project id '-1'"),
        ("https://key@host/٤٢", "Invalid project id"),
        ("https://key@[::1/42", "missing ']'"),
        ("https://key@::1/42", "brackets"),
        ("https://key@[::1]x/42", "Invalid host"),
        ("https://key@ho st/42", "Invalid host"),
        ("https://key@host\x00/42", "Invalid host"),
        ("https://k ey@host/42", "Invalid character in the DSN's key"),
        ("https://key@host/s p/42", "Invalid path '/s p'"),
        ("https://key\r\nX-Evil: 1@host/42", "Invalid character in the DSN's key"),
        ("https://key:s,ecret@host/42", "Invalid character in the DSN's key"),
    ],
)
def test_malformed_dsn_names_the_problem(dsn: str, message: str) -> None:
    with pytest.raises(BadDsn, match=message):
        Dsn.parse(dsn)


def test_bad_dsn_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Dsn.parse("https://key@host/abc")


def test_parse_accepts_dsn_and_bytes_and_rejects_other_types() -> None:
    parsed = Dsn.parse("https://key@host/42")
    assert Dsn.parse(parsed) is parsed
    assert Dsn.parse(b"https://key@host/42") == parsed
    with pytest.raises(TypeError, match="int"):
        Dsn.parse(42)  # type: ignore[arg-type]


def test_dsn_is_frozen_and_hashable() -> None:
    parsed = Dsn.parse("https://key@host/42")
    with pytest.raises(AttributeError):
        parsed.host = "other"  # type: ignore[misc]
    assert {parsed, Dsn.parse(" https://key@host:443/42 ")} == {parsed}


@pytest.mark.parametrize(
    ("host", "org_id"),
    [
        ("o123.ingest.sentry.io", "123"),
        ("o0.ingest.us.sentry.io", "0"),
        ("o12.sentry.io", "12"),
        ("O77.ingest.sentry.io", "77"),
        ("oabc.ingest.sentry.io", None),
        ("xo12.ingest.sentry.io", None),
        ("o12ingest.sentry.io", None),
        ("o.ingest.sentry.io", None),
        ("o123", None),
        ("sentry.example.com", None),
    ],
)
def test_org_id_from_host(host: str, org_id: Optional[str]) -> None:
    assert Dsn.parse(f"https://key@{host}/1").org_id == org_id


def test_auth_header() -> None:
    dsn = Dsn.parse("https://pub@host/1")
    assert dsn.auth_header() == (
        f"Sentry sentry_key=pub, sentry_version=7, sentry_client={USER_AGENT}"
    )
    legacy = Dsn.parse("https://pub:sec@host/1")
    assert legacy.auth_header("my.sdk/1.0") == (
        "Sentry sentry_key=pub, sentry_version=7, sentry_client=my.sdk/1.0, sentry_secret=sec"
    )
    assert legacy.auth_header(None, timestamp=1700000000.75) == (
        "Sentry sentry_key=pub, sentry_version=7, sentry_timestamp=1700000000, sentry_secret=sec"
    )


def test_other_endpoints() -> None:
    dsn = Dsn.parse("https://key@host/sub/42")
    assert dsn.endpoint_url("minidump") == "https://host/sub/api/42/minidump/"
    assert dsn.otlp_traces_url == "https://host/sub/api/42/integration/otlp/v1/traces/"


_word = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)


@given(
    scheme=st.sampled_from(["http", "https"]),
    key=_word,
    secret=st.none() | st.text("abcdef0123456789", max_size=12),
    host=st.lists(_label, min_size=1, max_size=4).map(".".join) | st.just("::1"),
    port=st.none() | st.integers(1, 65535),
    prefix=st.lists(_word, max_size=3),
    project=st.integers(0, 10**12).map(str),
)
def test_parse_roundtrip(
    scheme: str,
    key: str,
    secret: Optional[str],
    host: str,
    port: Optional[int],
    prefix: list[str],
    project: str,
) -> None:
    auth = key if secret is None else f"{key}:{secret}"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    path = "".join(f"/{part}" for part in prefix)
    parsed = Dsn.parse(f"{scheme}://{auth}@{netloc}{path}/{project}")
    default_port = 443 if scheme == "https" else 80
    assert parsed == Dsn(
        scheme, key, secret, host, default_port if port is None else port, path, project
    )
    assert Dsn.parse(str(parsed)) == parsed
    assert parsed.envelope_url.endswith(f"{path}/api/{project}/envelope/")


@given(st.text(max_size=40))
def test_parse_arbitrary_text_only_raises_bad_dsn(text: str) -> None:
    try:
        parsed = Dsn.parse(text)
    except BadDsn:
        return
    assert Dsn.parse(str(parsed)) == parsed


def test_parse_does_not_import_urllib3() -> None:
    code = (
        "import sys, tripwire\n"
        "before = set(sys.modules)\n"
        "from tripwire.dsn import Dsn\n"
        "Dsn.parse('https://k@h/1').auth_header()\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('urllib3', 'ssl', 'asyncio', 'socket', 'urllib', 'http')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- differential against sentry-sdk ------------------------------------------------------

SAME_AS_SENTRY = [
    "https://key@o123.ingest.sentry.io/42",
    "https://key@o123.ingest.us.sentry.io/4505",
    "https://key:secret@host/1",
    "https://key:@host/1",
    "https://key@host/sub/path/42",
    "https://key@host:8443/42",
    "https://key@host:443/42",
    "http://key@host/42",
    "http://key@host:80/42",
    "http://key@host:443/42",
    "http://key@localhost:9000/3",
    "  https://key@host/42  ",
    "HTTPS://key@HOST/42",
    "https://key@host/42?x=1",
    "https://key@host//42",
]

# Deliberate differences, each with the reason.
SENTRY_ACCEPTS_WE_REJECT = {
    "https://key@host:0/42": "port 0 cannot be connected to",
    "https://key@host/-1": "project ids are positive numbers",
    "https://key@host/٤٢": "only ASCII digits form a project id",
    "https://key@host/ 42": "whitespace inside the DSN is a copy/paste error",
}
WE_ACCEPT_SENTRY_REJECTS = {
    "https://key@host/42/": "an unambiguous trailing slash is harmless",
}


def test_same_urls_and_auth_header_as_sentry_sdk() -> None:
    utils = pytest.importorskip("sentry_sdk.utils")
    client = "sentry.python/2.75.0"
    for raw in SAME_AS_SENTRY:
        theirs = utils.Dsn(raw)
        ours = Dsn.parse(raw)
        assert ours.scheme == theirs.scheme, raw
        assert ours.host == theirs.host, raw
        assert ours.port == theirs.port, raw
        assert ours.public_key == theirs.public_key, raw
        assert ours.secret_key == theirs.secret_key, raw
        assert ours.project_id == theirs.project_id, raw
        assert ours.path + "/" == theirs.path, raw
        assert ours.netloc == theirs.netloc, raw
        assert ours.org_id == theirs.org_id, raw
        auth = theirs.to_auth(client)
        assert ours.envelope_url == auth.get_api_url(), raw
        assert ours.auth_header(client, timestamp=None) == auth.to_header(), raw
        if theirs.secret_key is None:  # sentry-sdk renders "key@secret@" for legacy DSNs
            assert str(ours) == str(theirs), raw


def test_rejects_what_sentry_sdk_rejects() -> None:
    utils = pytest.importorskip("sentry_sdk.utils")
    for raw in [
        "",
        "ftp://key@host/42",
        "https://host/42",
        "https://@host/42",
        "https://key@:80/42",
        "https://key@host/",
        "https://key@host",
        "https://key@host/abc",
        "https://key@host/1.5",
        "https://key@host:99999/42",
        "https://key@host:abc/42",
    ]:
        with pytest.raises(ValueError):
            utils.Dsn(raw)
        with pytest.raises(BadDsn):
            Dsn.parse(raw)


def test_deliberate_differences_from_sentry_sdk() -> None:
    utils = pytest.importorskip("sentry_sdk.utils")
    for raw in SENTRY_ACCEPTS_WE_REJECT:
        utils.Dsn(raw)
        with pytest.raises(BadDsn):
            Dsn.parse(raw)
    for raw in WE_ACCEPT_SENTRY_REJECTS:
        with pytest.raises(ValueError):
            utils.Dsn(raw)
        Dsn.parse(raw)
    # IPv6: sentry-sdk drops the brackets and builds "https://::1:9000/api/..."
    assert Dsn.parse("https://k@[::1]:9000/1").envelope_url == "https://[::1]:9000/api/1/envelope/"
