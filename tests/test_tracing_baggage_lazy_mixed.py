"""Incoming baggage with third-party entries or blanks between entries is kept whole too.

Whatever the header, a `Baggage` made by `from_incoming_header` shows what parsing it
at once (`_parse_header`) gives: the entries, the third-party part, frozen or not, the
header it forwards and the entries `continue_trace` reads.
"""

from __future__ import annotations

import random

import pytest

from tripwire.tracing._propagation import Baggage, PropagationContext, _parse_header

SENTRY_7 = (
    "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,"
    "sentry-release=upstream%401.0,sentry-environment=production,sentry-sample_rate=0.5,"
    "sentry-sample_rand=0.250000,sentry-sampled=true"
)

HEADERS = [
    SENTRY_7 + ",vendor=abc",
    "vendor=abc," + SENTRY_7,
    ", ".join(SENTRY_7.split(",")),
    ",  ".join(SENTRY_7.split(",")) + " ",
    " \t" + ",\t".join(SENTRY_7.split(",")),
    "sentry-a=1 ,sentry-b=2",
    "sentry-a=1, vendor=x;prop=1, sentry-b=2",
    "sentry-release=app@1.0,sentry-sample_rand=0.5",  # not well-formed: forwarded re-quoted
    "sentry-a=1,ven%64or=x",  # an escaped third-party key
    "sentry-a=1,sentry-a=2,vendor=x",
    "sentry-a=b=c,vendor=d=e",
    "vendor=xsentry-a=1,sentry-b=2",
    "vendor=x,other=y",
    "sentry-a=1,vendor",  # an entry without a value
    "sentry-a=1,,vendor=x",
    "sentry-a= 1,vendor=x",  # a blank inside an entry
    "sentry-a=1,vendor=x y",
    "sentry-a=1\n,vendor=x",
    "sentry-=1,vendor=x",
    "=1,sentry-a=2",
    "sentry-a=%zz,vendor=%41",
    "sentry-org_id=7, sentry-sample_rand=0.5, vendor=x",
    "sentry-sample_rand=0.1,sentry-a=xsentry-sample_rand=0.9",
    "sentry-a=1, sentry-b= 2",
    "  sentry-a=1,\tsentry-b=2",
    "vendor=x,\t\tsentry-sample_rand=0.7",
    "vendor=x ,sentry-a=1",
    'sentry-a="q",vendor=x',
    "sentry-a=\u00e9,vendor=x",
    "sentry-a=1;p=v,vendor=x",
]


def _state(baggage: Baggage) -> tuple[object, ...]:
    return (
        baggage._get("org_id"),
        baggage._get("sample_rand"),
        baggage._get("a"),
        baggage._get("b"),
        baggage.serialize(),
        baggage.serialize(include_third_party=True),
        dict(baggage.sentry_items),
        baggage.third_party_items,
        baggage.mutable,
        baggage.dynamic_sampling_context(),
    )


@pytest.mark.parametrize("header", HEADERS)
def test_baggage_shows_what_parsing_gives(header: str) -> None:
    assert _state(Baggage.from_incoming_header(header)) == _state(
        _parse_header(Baggage, header, None)
    )


def test_generated_headers_show_what_parsing_gives() -> None:
    rng = random.Random(7)
    pieces = [
        "sentry-a=1",
        "sentry-b=x%20y",
        "sentry-sample_rand=0.3",
        "sentry-org_id=5",
        "sentry-a=",
        "vendor=v",
        "k=v;p=q",
        "sentry-a=q@r",
        "x%41=1",
        "nokey",
        "",
        "sentry-b=a=b",
        "sentry-a=x sentry-b=2",
        "sentry-a=1\t",
        'v="q"',
    ]
    separators = [",", ", ", " ,", ",\t", ",,", " , ", ",  ", ", \t"]
    for _ in range(2000):
        parts = [rng.choice(pieces) for _ in range(rng.randint(1, 5))]
        header = parts[0]
        for part in parts[1:]:
            header += rng.choice(separators) + part
        if rng.random() < 0.2:
            header = " " + header + "\t"
        lazy = Baggage.from_incoming_header(header)
        assert _state(lazy) == _state(_parse_header(Baggage, header, None)), header


def test_third_party_entries_do_not_make_the_header_parsed_at_once() -> None:
    baggage = Baggage.from_incoming_header(SENTRY_7 + ",vendor=abc")
    assert baggage._raw is not None
    assert baggage._get("sample_rand") == "0.250000"
    assert baggage._raw is not None  # reading one entry does not parse it
    assert baggage.third_party_items == "vendor=abc"
    assert baggage._raw is None
    assert baggage.serialize(include_third_party=True) == SENTRY_7 + ",vendor=abc"


def test_blanks_between_entries_are_dropped_as_parsing_does() -> None:
    header = ", ".join(SENTRY_7.split(","))
    baggage = Baggage.from_incoming_header(header)
    assert baggage._raw is not None
    assert baggage._get("release") == "upstream@1.0"
    assert baggage.serialize() == SENTRY_7


def test_setting_entries_of_a_kept_header_keeps_its_third_party_part() -> None:
    baggage = Baggage.from_incoming_header("sentry-a=1,vendor=x")
    baggage.sentry_items = {"b": "2"}
    assert baggage.serialize(include_third_party=True) == "sentry-b=2,vendor=x"
    other = Baggage.from_incoming_header("sentry-a=1,vendor=x")
    other.third_party_items = "mine=1"
    assert other.serialize(include_third_party=True) == "sentry-a=1,mine=1"
    assert other.sentry_items == {"a": "1"}


def test_continue_trace_reads_a_mixed_header_without_parsing() -> None:
    context = PropagationContext.from_incoming_data(
        {
            "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
            "baggage": "vendor=abc, " + ", ".join(SENTRY_7.split(",")),
        }
    )
    assert context is not None
    assert context.sample_rand == 0.25
    assert context.baggage is not None and context.baggage._raw is not None
    assert context.dynamic_sampling_context["release"] == "upstream@1.0"
    assert context.baggage.serialize(include_third_party=True) == SENTRY_7 + ",vendor=abc"
