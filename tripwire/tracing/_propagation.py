"""Distributed trace propagation: `sentry-trace`, W3C `traceparent` and `baggage`.

Pure parsing and formatting plus the `PropagationContext`, the trace an isolation
scope belongs to when no span is active. Ids are generated lazily: most scopes never
need them (no error, no outgoing request).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from random import Random
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from tripwire._ids import ids
from tripwire.scope._current import get_client
from tripwire.tracing._consts import (
    BAGGAGE_HEADER_NAME,
    LOW_QUALITY_TRANSACTION_SOURCES,
    SENTRY_TRACE_HEADER_NAME,
)

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.tracing._transaction import Transaction

# trace id, span id and sampled flag are each optional, as in the sentry-trace spec.
SENTRY_TRACE_REGEX = re.compile(r"^[ \t]*([0-9a-f]{32})?-?([0-9a-f]{16})?-?([01])?[ \t]*$")
# The usual value, all three parts present: matched first.
_CANONICAL_TRACE = re.compile(r"([0-9a-f]{32})-([0-9a-f]{16})-([01])\Z").match
_W3C_REGEX = re.compile(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

SENTRY_PREFIX = "sentry-"
# Incoming baggage beyond this many characters is ignored: a header is data from the
# network and must not cost unbounded work (W3C asks for at least 8192 bytes).
MAX_BAGGAGE_CHARS = 64 * 1024


def extract_sentrytrace_data(header: str | None) -> dict[str, Any] | None:
    """Parse a `sentry-trace` header value.

    As sentry_sdk 2.x: a value that a proxy joined from several headers with commas
    counts as its first non-empty part, and a `00-<trace_id>-<span_id>-00` value
    (W3C-like, flags 00) is read without its `00-` / `-00` ends (no sampling flag).

    Args:
        header: `<trace_id>-<span_id>-<sampled>`, each part optional.

    Returns:
        `{"trace_id", "parent_span_id", "parent_sampled"}` (None where absent), or None
        if the value is empty or malformed.
    """
    parsed = _sentry_trace(header)
    if parsed is None:
        return None
    trace_id, span_id, sampled = parsed
    return {"trace_id": trace_id, "parent_span_id": span_id, "parent_sampled": sampled}


def _sentry_trace(header: str | None) -> tuple[str | None, str | None, bool | None] | None:
    """`extract_sentrytrace_data` as a (trace_id, parent_span_id, parent_sampled) tuple."""
    if not header or not isinstance(header, str):
        return None
    match = _CANONICAL_TRACE(header)
    if match is not None:  # what SENTRY_TRACE_REGEX gives it, with less backtracking
        trace_id, span_id, flag = match.groups()
        return trace_id, span_id, flag == "1"
    if "," in header:
        header = next((part for part in (p.strip() for p in header.split(",")) if part), "")
        if not header:
            return None
    if header[:3] == "00-" and header[-3:] == "-00":
        header = header[3:-3]
    match = SENTRY_TRACE_REGEX.match(header)
    if match is None:
        return None
    trace_id, span_id, flag = match.groups()
    return trace_id, span_id, None if flag is None else flag == "1"


def extract_w3c_traceparent(header: str | None) -> dict[str, Any] | None:
    """Parse a W3C `traceparent` header (`00-<trace_id>-<span_id>-<flags>`).

    Returns:
        The same shape as `extract_sentrytrace_data`, or None if malformed. The
        `sampled` bit of the flags becomes `parent_sampled`.
    """
    if not header or not isinstance(header, str):
        return None
    match = _W3C_REGEX.match(header.lower())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return {
        "trace_id": trace_id,
        "parent_span_id": span_id,
        "parent_sampled": bool(int(flags, 16) & 1),
    }


def normalize_incoming_data(incoming_data: Mapping[Any, Any]) -> dict[str, Any]:
    """Header names as `sentry-trace` / `baggage`: WSGI `HTTP_` prefixes removed, lower case."""
    data: dict[str, Any] = {}
    for key, value in incoming_data.items():
        if not isinstance(key, str):
            continue
        if key.startswith("HTTP_"):
            key = key[5:]
        data[key.replace("_", "-").lower()] = value
    return data


# The usual spellings of the trace headers: found with a lookup, not a scan.
_SPELLINGS = (
    ("sentry-trace", ("sentry-trace", "HTTP_SENTRY_TRACE", "Sentry-Trace")),
    ("baggage", ("baggage", "HTTP_BAGGAGE", "Baggage")),
    ("traceparent", ("traceparent", "HTTP_TRACEPARENT", "Traceparent")),
)


def _trace_headers(incoming_data: Mapping[Any, Any]) -> Mapping[str, Any]:
    """The trace headers of a request, whatever the mapping's key spelling."""
    if type(incoming_data) is dict:
        found: dict[str, Any] = {}
        for name, spellings in _SPELLINGS:
            for spelling in spellings:
                value = incoming_data.get(spelling)
                if value is not None:
                    found[name] = value
                    break
        if "sentry-trace" in found or "traceparent" in found:
            return found
    return normalize_incoming_data(incoming_data)


class EnvironHeaders(Mapping[str, str]):
    """The HTTP headers of a WSGI/ASGI environ, keyed without the `HTTP_` prefix."""

    def __init__(self, environ: Mapping[Any, Any], prefix: str = "HTTP_") -> None:
        self.environ = environ
        self.prefix = prefix

    def __getitem__(self, key: str) -> Any:
        return self.environ[self.prefix + key.replace("-", "_").upper()]

    def __len__(self) -> int:
        return sum(1 for _ in iter(self))

    def __iter__(self) -> Iterator[str]:
        prefix = self.prefix
        for key in self.environ:
            if not isinstance(key, str):
                continue
            key = key.replace("-", "_").upper()
            if key.startswith(prefix):
                yield key[len(prefix) :]


# Values made only of these characters need no percent-encoding (quote's safe set).
_NEEDS_NO_QUOTING = re.compile(r"[A-Za-z0-9_.~/-]*\Z").match


# Sentry entries as received, fit to forward verbatim: only unreserved characters,
# percent escapes and the list/pair separators.
_WELL_FORMED = re.compile(r"[A-Za-z0-9_.~/=,%-]*\Z").match

# Values that need quoting (a release like "app@1.0", a transaction name) repeat from
# request to request: remember a bounded number of them.
_QUOTED: dict[str, str] = {}
_QUOTED_MAX = 256


_UNQUOTED: dict[str, str] = {}


def _unquote(text: str) -> str:
    unquoted = _UNQUOTED.get(text)
    if unquoted is None:
        unquoted = unquote(text)
        if len(_UNQUOTED) < _QUOTED_MAX and len(text) <= 200:
            _UNQUOTED[text] = unquoted
    return unquoted


def _quote(text: str) -> str:
    quoted = _QUOTED.get(text)
    if quoted is None:
        if _NEEDS_NO_QUOTING(text):
            return text
        quoted = quote(text)
        if len(_QUOTED) < _QUOTED_MAX and len(text) <= 200:
            _QUOTED[text] = quoted
    return quoted


def _text(value: Any) -> str | None:
    """A header value as text (ASGI servers hand over bytes)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return None


def format_sample_rand(value: float) -> str:
    """sample_rand as it travels in baggage: six decimals."""
    return f"{value:.6f}"


def sample_rand_from_trace_id(
    trace_id: str, parent_sampled: bool | None = None, parent_rate: float | None = None
) -> float:
    """The sample_rand of a trace that did not carry one, derived from its trace id.

    The value is a pure function of the trace id (as sentry_sdk 2.x derives it), so
    every service continuing the same trace picks the same number. When the upstream
    decision and rate are known, the value is drawn from the range consistent with
    them: below the rate if it sampled, at or above it if not.

    Raises:
        ValueError: The decision and the rate leave no such range (sampled at rate 0,
            or not sampled at rate 1): the caller does without, as sentry_sdk does.
    """
    low, high = 0.0, 1.0
    if parent_sampled is not None and parent_rate is not None:
        if parent_sampled:
            high = parent_rate
        else:
            low = parent_rate
    if not low < high:
        raise ValueError(f"no sample_rand fits sampled={parent_sampled} at rate {parent_rate}")
    scaled_low, scaled_high = int(low * 1_000_000), int(high * 1_000_000)
    if scaled_low >= scaled_high:  # a range narrower than the six decimals
        return scaled_low / 1_000_000
    return Random(trace_id).randrange(scaled_low, scaled_high) / 1_000_000


def parse_sample_rand(value: Any) -> float | None:
    """A propagated sample_rand as a float in [0, 1), or None if absent or invalid."""
    if value is None:
        return None
    try:
        rand = float(value)
    except (TypeError, ValueError):
        return None
    return rand if 0.0 <= rand < 1.0 else None


def _parse_rate(value: Any) -> float | None:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if 0.0 <= rate <= 1.0 else None


class Baggage:
    """The W3C `baggage` header: Sentry's `sentry-*` entries and everyone else's.

    The `sentry-*` entries are the dynamic sampling context (DSC). Once a service has
    made (or received) them they are frozen (`mutable=False`) and forwarded unchanged,
    so that every service of a trace reports the same DSC. Third-party entries are kept
    verbatim and sent on with `serialize(include_third_party=True)`.
    """

    __slots__ = ("_items", "_raw", "_third", "_wire", "mutable")

    SENTRY_PREFIX = SENTRY_PREFIX

    def __init__(
        self, sentry_items: dict[str, str], third_party_items: str = "", mutable: bool = True
    ) -> None:
        self._items: dict[str, str] | None = sentry_items
        # An incoming header of Sentry entries only, read on first use of `sentry_items`
        # (`_items` is None until then): most requests never look inside it.
        self._raw: str | None = None
        # The third-party entries; None while a header kept whole that has some is unread.
        self._third: str | None = third_party_items
        self.mutable = mutable
        # (the items it was made from, the serialized Sentry entries): reused while
        # `sentry_items` still equals the snapshot (the dict is public and mutable).
        self._wire: tuple[dict[str, str], str] | None = None

    @property
    def sentry_items(self) -> dict[str, str]:
        """The Sentry entries (keys without the `sentry-` prefix), a mutable dict."""
        items = self._items
        if items is None:
            items = self._read()
        return items

    @sentry_items.setter
    def sentry_items(self, value: dict[str, str]) -> None:
        if self._raw is not None:
            self._read()  # the third-party entries still come from the header
        self._items = value

    @property
    def third_party_items(self) -> str:
        """The third-party entries, as received (comma-separated)."""
        third = self._third
        if third is None and self._raw is not None:
            self._read()
            third = self._third
        return third  # type: ignore[return-value]

    @third_party_items.setter
    def third_party_items(self, value: str) -> None:
        if self._raw is not None:
            self._read()
        self._third = value

    @classmethod
    def from_incoming_header(
        cls, header: str | None, *, _sample_rand: str | None = None
    ) -> Baggage:
        """Parse an incoming `baggage` header; Sentry entries present make it frozen."""
        if header and _sample_rand is None and len(header) <= MAX_BAGGAGE_CHARS:
            # First and last entries first: a third-party entry is usually one of them.
            if header.startswith(SENTRY_PREFIX, header.rfind(",") + 1) and _LAZY_OK(header):
                return cls._kept_whole(header, "")
            if _LAZY_MIXED(header) and (
                # A Sentry entry (so it is frozen); one missed here is only parsed at once.
                ",sentry-" in header
                or ", sentry-" in header
                or header.lstrip(" \t").startswith(SENTRY_PREFIX)
            ):
                return cls._kept_whole(header, None)
        return _parse_header(cls, header, _sample_rand)

    @classmethod
    def _kept_whole(cls, raw: str, third: str | None) -> Baggage:
        """A frozen baggage over `raw` (see `_LAZY_OK`), parsed on first use."""
        baggage = cls.__new__(cls)
        baggage._items = None
        baggage._raw = raw
        baggage._third = third
        baggage.mutable = False
        baggage._wire = None
        return baggage

    def _read(self) -> dict[str, str]:
        """Parse the header kept whole by `from_incoming_header` (first use)."""
        parsed = _parse_header(Baggage, self._raw, None)
        items = self._items = parsed.sentry_items
        self._wire = parsed._wire
        self._third = parsed._third
        self._raw = None
        return items

    def _get(self, key: str) -> str | None:
        """`sentry_items.get(key)`, without parsing a header kept whole."""
        raw = self._raw
        if raw is None:
            items = self._items
            return (items if items is not None else self._read()).get(key)
        # Every entry starts after a comma and blanks, has no blank and no escaped key
        # (see `_LAZY_OK`, `_LAZY_MIXED`); the last one wins, as in the dict.
        needle = f"sentry-{key}="
        i = raw.rfind(needle)
        while i > 0 and raw[i - 1] not in _ENTRY_START:
            i = raw.rfind(needle, 0, i)
        if i < 0:
            return None
        start = i + len(needle)
        end = raw.find(",", start)
        value = raw[start:] if end < 0 else raw[start:end]
        return _unquote(value) if "%" in value else value

    @classmethod
    def from_options(cls, scope: Any) -> Baggage | None:
        """The DSC a scope's trace has before any transaction: from the client's options."""
        context = scope.get_active_propagation_context()
        return cls(_dsc_from_options(get_client(), context.trace_id), mutable=False)

    @classmethod
    def populate_from_transaction(cls, transaction: Transaction) -> Baggage:
        """The frozen DSC of a trace this service heads: from the transaction and options."""
        client = get_client()
        items: dict[str, str] = {
            "trace_id": transaction.trace_id,
            "sample_rand": format_sample_rand(transaction._get_sample_rand()),
        }
        _options_into(items, client)
        name = transaction.name
        if name and transaction.source not in LOW_QUALITY_TRANSACTION_SOURCES:
            items["transaction"] = name
        if transaction.sample_rate is not None:
            items["sample_rate"] = str(transaction.sample_rate)
        if transaction.sampled is not None:
            items["sampled"] = "true" if transaction.sampled else "false"
        previous = transaction._baggage
        if previous is None:
            return cls(items, mutable=False)
        # Sentry entries put in a still-mutable baggage by hand take precedence.
        if previous.sentry_items:
            items.update(previous.sentry_items)
        return cls(items, previous.third_party_items, mutable=False)

    def freeze(self) -> None:
        """Stop this service from changing the Sentry entries."""
        self.mutable = False

    def dynamic_sampling_context(self) -> dict[str, str]:
        """The Sentry entries as a dict (a copy)."""
        return dict(self.sentry_items)

    def serialize(self, include_third_party: bool = False) -> str:
        """The header value: Sentry entries, then (optionally) the third-party ones."""
        items = self.sentry_items
        wire = self._wire
        if wire is not None and wire[0] == items:
            text = wire[1]
        else:
            text = _serialize_items(items)
            self._wire = (dict(items), text)
        if include_third_party and self.third_party_items:
            return f"{text},{self.third_party_items}" if text else self.third_party_items
        return text

    @staticmethod
    def strip_sentry_baggage(header: str) -> str:
        """`header` without its `sentry-*` entries (to merge ours into someone else's)."""
        return ",".join(
            item
            for item in (raw.strip() for raw in header.split(","))
            if item and not unquote(item.partition("=")[0].strip()).startswith(SENTRY_PREFIX)
        )

    def _sample_rand(self) -> float | None:
        return parse_sample_rand(self._get("sample_rand"))

    def __repr__(self) -> str:
        return f'<Baggage "{self.serialize(include_third_party=True)}", mutable={self.mutable}>'


# A header `Baggage` may keep whole and parse on first use (`Baggage._read`): parsed,
# it would give what a lazy Baggage says before that. Only `sentry-*` entries (no
# third-party ones), each with a value (so it is frozen), no blanks and no escaped
# keys (so `Baggage._get` finds an entry by its name), only well-formed characters.
_LAZY_OK = re.compile(
    r"sentry-[A-Za-z0-9_.~/-]+=[A-Za-z0-9_.~/=%-]*"
    r"(?:,sentry-[A-Za-z0-9_.~/-]+=[A-Za-z0-9_.~/=%-]*)*\Z"
).match
# Also kept whole: entries with third-party ones among them, or blanks after the
# commas (dropped by parsing). Each entry is `key=value` of printable ASCII with no
# blank, no comma and no escaped key: `Baggage._get` still finds a Sentry entry by its
# name; the third-party part is made when first read.
_LAZY_MIXED = re.compile(
    r"[ \t]*[!#$&-+\--<>-~]+=[!#-+\--~]*(?:,[ \t]*[!#$&-+\--<>-~]+=[!#-+\--~]*)*\Z"
).match
# What may come right before an entry in a header kept whole.
_ENTRY_START = frozenset(", \t")


def _parse_header(cls: type[Baggage], header: str | None, sample_rand: str | None) -> Baggage:
    sentry_items: dict[str, str] = {}
    sentry_raw: list[str] = []
    third_party: list[str] = []
    if header and len(header) <= MAX_BAGGAGE_CHARS:
        for raw in header.split(","):
            key, eq, value = raw.partition("=")
            if not eq:
                continue
            key = key.strip()
            if "%" in key:
                key = _unquote(key)
            if key[:7] == SENTRY_PREFIX:
                value = value.strip()
                sentry_items[key[7:]] = _unquote(value) if "%" in value else value
                sentry_raw.append(raw.strip())
            else:
                third_party.append(raw.strip())
    baggage = cls(sentry_items, ",".join(third_party), mutable=not sentry_items)
    if sentry_items:
        raw_text = ",".join(sentry_raw)
        # Forward the entries as received when they are already well-formed.
        if len(sentry_raw) == len(sentry_items) and _WELL_FORMED(raw_text):
            baggage._wire = (dict(sentry_items), raw_text)
        if sample_rand is not None and "sample_rand" not in sentry_items:
            sentry_items["sample_rand"] = sample_rand
    return baggage


def _options_into(items: dict[str, str], client: BaseClient) -> None:
    opts = client.options
    environment = opts.get("environment")
    if environment:
        items["environment"] = str(environment)
    release = opts.get("release")
    if release:
        items["release"] = str(release)
    parsed = client.parsed_dsn
    if parsed is not None:
        items["public_key"] = parsed.public_key
    org_id = local_org_id(client)
    if org_id:
        items["org_id"] = org_id


def _dsc_from_options(client: BaseClient, trace_id: str) -> dict[str, str]:
    items: dict[str, str] = {"trace_id": trace_id}
    _options_into(items, client)
    rate = client.options.get("traces_sample_rate")
    if rate:  # as sentry_sdk: a rate of 0 is left out
        items["sample_rate"] = str(rate)
    return items


def _serialize_items(items: dict[str, str]) -> str:
    plain = _NEEDS_NO_QUOTING
    try:
        # One check each for keys and values in the common case: nothing to quote.
        keys_plain = plain("".join(items)) is not None
        if keys_plain and plain("".join(items.values())) is not None:
            return ",".join([f"sentry-{key}={value}" for key, value in items.items()])
        return ",".join(
            [
                f"sentry-{key if keys_plain else _quote(key)}={_quote(value)}"
                for key, value in items.items()
            ]
        )
    except TypeError:  # a non-str key or value
        return ",".join([f"sentry-{_quote(str(k))}={_quote(str(v))}" for k, v in items.items()])


def local_org_id(client: BaseClient) -> str | None:
    """This service's org id: the `org_id` option, else the one in the DSN's host."""
    org_id = client.options.get("org_id")
    if org_id:
        return str(org_id)
    parsed = client.parsed_dsn
    return parsed.org_id if parsed is not None else None


def continue_allowed(incoming_org: str | None, local_org: str | None, strict: bool) -> bool:
    """Whether a trace from an organization may be continued (strict_trace_continuation).

    Two known, different org ids never continue. With `strict`, a trace continues only
    when both are known and equal, or both are unknown.
    """
    if incoming_org and local_org:
        return incoming_org == local_org
    if strict:
        return not incoming_org and not local_org
    return True


# What `PropagationContext.update` sets: the attributes sentry_sdk 2.x lets it set.
_UPDATABLE = frozenset(
    {"trace_id", "span_id", "parent_span_id", "parent_sampled", "baggage", "_trace_id", "_span_id"}
)


class PropagationContext:
    """trace_id / span_id / parent data continued from incoming headers or made up fresh."""

    __slots__ = (
        "_dsc",
        "_sample_rand",
        "_span_id",
        "_trace_id",
        "baggage",
        "custom_sampling_context",
        "parent_sampled",
        "parent_span_id",
    )

    def __init__(
        self,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_span_id: str | None = None,
        parent_sampled: bool | None = None,
        dynamic_sampling_context: dict[str, str] | None = None,
        sample_rand: float | None = None,
        baggage: Baggage | None = None,
    ) -> None:
        self._trace_id = trace_id
        self._span_id = span_id
        self.parent_span_id = parent_span_id
        self.parent_sampled = parent_sampled
        # Set by Scope.set_custom_sampling_context; read by span streaming's sampler.
        self.custom_sampling_context: dict[str, Any] | None = None
        if baggage is None and dynamic_sampling_context is not None:
            baggage = Baggage(dict(dynamic_sampling_context), mutable=False)
        self.baggage = baggage
        self._sample_rand = sample_rand
        # (client, baggage) of the last DSC built from options: errors and headers reuse it.
        self._dsc: tuple[Any, Baggage] | None = None

    @classmethod
    def from_incoming_data(
        cls, incoming_data: Mapping[str, Any], client: BaseClient | None = None
    ) -> PropagationContext | None:
        """The context continued from `sentry-trace` (or `traceparent`) and `baggage`.

        Returns:
            None when there is no valid trace header, or when the organizations do not
            allow continuing (see `continue_allowed`): the caller starts a new trace.
        """
        trace = header = None
        if type(incoming_data) is dict:
            # The usual case, two lookups: `_trace_headers` finds the other spellings.
            trace = incoming_data.get(SENTRY_TRACE_HEADER_NAME)
            if trace is not None:
                header = incoming_data.get(BAGGAGE_HEADER_NAME)
        if trace is None or header is None:
            data = _trace_headers(incoming_data)
            trace = data.get(SENTRY_TRACE_HEADER_NAME)
            header = data.get(BAGGAGE_HEADER_NAME)
        parsed = _sentry_trace(trace if type(trace) is str else _text(trace))
        if parsed is None:
            w3c = extract_w3c_traceparent(_text(_trace_headers(incoming_data).get("traceparent")))
            if w3c is None:
                return None
            # The trace is joined, but its sampled flag is not taken as a decision:
            # sentry_sdk 2.75 ignores `traceparent`, so a Sentry setup's rates apply
            # whatever an OpenTelemetry upstream sampled (its flags "00" dropped every
            # transaction here, "01" kept all, whatever traces_sample_rate said).
            parsed = (w3c["trace_id"], w3c["parent_span_id"], None)
        if header is not None and type(header) is not str:
            header = _text(header)
        baggage = Baggage.from_incoming_header(header) if header is not None else None
        if client is None:
            client = get_client()
        incoming_org = baggage._get("org_id") if baggage is not None else None
        strict = bool(client.options.get("strict_trace_continuation"))
        if (incoming_org or strict) and not continue_allowed(
            incoming_org, local_org_id(client), strict
        ):
            return None
        if cls is PropagationContext:
            # `__init__` with these arguments, without its keyword handling.
            context = cls.__new__(cls)
            context._trace_id, context.parent_span_id, context.parent_sampled = parsed
            context._span_id = None
            context.custom_sampling_context = None
            context._sample_rand = None
            context._dsc = None
        else:
            context = cls(parsed[0], None, parsed[1], parsed[2])
        context.baggage = baggage
        if baggage is not None:
            rand = baggage._sample_rand()
            if rand is None:
                # An older SDK (or none) upstream: derive one and forward it with the
                # trace, even in a baggage of third-party entries only (as sentry_sdk).
                rate = _parse_rate(baggage._get("sample_rate"))
                try:
                    rand = sample_rand_from_trace_id(context.trace_id, context.parent_sampled, rate)
                except ValueError:  # decision and rate disagree: the transaction derives one
                    rand = None
                else:
                    baggage.sentry_items["sample_rand"] = format_sample_rand(rand)
            context._sample_rand = rand
        return context

    @property
    def trace_id(self) -> str:
        """The trace id, generated on first use."""
        if self._trace_id is None:
            self._trace_id = ids.trace_id()
        return self._trace_id

    @trace_id.setter
    def trace_id(self, value: str) -> None:
        self._trace_id = value

    @property
    def span_id(self) -> str:
        """The span id errors outside a span attach to, generated on first use."""
        if self._span_id is None:
            self._span_id = ids.span_id()
        return self._span_id

    @span_id.setter
    def span_id(self, value: str) -> None:
        self._span_id = value

    @property
    def sample_rand(self) -> float | None:
        """The propagated sample_rand, if the incoming trace carried (or implied) one."""
        return self._sample_rand

    @sample_rand.setter
    def sample_rand(self, value: float | None) -> None:
        self._sample_rand = value

    @property
    def dynamic_sampling_context(self) -> dict[str, str]:
        """The trace's DSC (a copy), as sentry_sdk 2.x.

        The incoming baggage's Sentry entries when the trace came with a baggage
        header (even with none of them: `{}`); else the DSC this service makes from the
        client's options; `{}` without an active client.
        """
        baggage = self.baggage
        if baggage is not None:
            return baggage.dynamic_sampling_context()
        client = get_client()
        if not client.is_active():
            return {}
        return self.sentry_baggage(client).dynamic_sampling_context()

    @dynamic_sampling_context.setter
    def dynamic_sampling_context(self, value: dict[str, str] | None) -> None:
        self.baggage = Baggage(dict(value), mutable=False) if value is not None else None

    def update(self, other_dict: Mapping[str, Any]) -> None:
        """Set attributes from a dict (e.g. `extract_sentrytrace_data`'s result).

        Keys naming no settable attribute (as in sentry_sdk 2.x) are ignored.
        """
        for key, value in other_dict.items():
            if key in _UPDATABLE:
                setattr(self, key, value)

    def dsc_for(self, client: BaseClient) -> dict[str, str]:
        """The DSC of this trace: the incoming one, else built from `client`'s options."""
        return self.sentry_baggage(client).sentry_items

    def sentry_baggage(self, client: BaseClient) -> Baggage:
        """The baggage whose Sentry entries are this trace's DSC (see `dsc_for`)."""
        baggage = self.baggage
        # A header kept whole (`_raw`) has Sentry entries: no need to parse it here.
        if baggage is not None and (baggage._raw is not None or baggage.sentry_items):
            return baggage
        cached = self._dsc
        if cached is not None and cached[0] is client:
            return cached[1]
        baggage = Baggage(_dsc_from_options(client, self.trace_id), mutable=False)
        self._dsc = (client, baggage)
        return baggage

    def to_traceparent(self) -> str:
        """The `sentry-trace` value for requests made outside any span."""
        return f"{self.trace_id}-{self.span_id}"

    def to_trace_context(self) -> dict[str, Any]:
        """The event's `contexts.trace` for errors outside any span."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
        }

    def __repr__(self) -> str:
        return (
            f"<PropagationContext trace_id={self._trace_id} span_id={self._span_id}"
            f" parent_span_id={self.parent_span_id} parent_sampled={self.parent_sampled}"
            f" baggage={self.baggage!r}>"
        )


def should_propagate_trace(client: BaseClient, url: str) -> bool:
    """Whether outgoing requests to `url` get trace headers (trace_propagation_targets).

    Never for the SDK's own ingest URL; otherwise when a target (a regex or substring,
    searched anywhere in the URL) matches.
    """
    parsed = client.parsed_dsn
    if parsed is not None and client.transport is not None and _is_sentry_url(parsed, url):
        return False
    targets = client.options.get("trace_propagation_targets")
    if not targets:
        return False
    return match_regex_list(url, targets, substring_matching=True)


def _is_sentry_url(parsed: Any, url: str) -> bool:
    netloc = getattr(parsed, "netloc", None)
    return isinstance(netloc, str) and bool(netloc) and netloc in url


def match_regex_list(item: str, regex_list: Any = None, substring_matching: bool = False) -> bool:
    """Whether `item` matches any of the patterns (regex search; `$`-anchored if not substring)."""
    if not regex_list:
        return False
    for pattern in regex_list:
        if isinstance(pattern, re.Pattern):
            if pattern.search(item):
                return True
            continue
        text = str(pattern)
        if not substring_matching and not text.endswith("$"):
            text += "$"
        try:
            if re.search(text, item):
                return True
        except re.error:
            if text.rstrip("$") in item:
                return True
    return False
