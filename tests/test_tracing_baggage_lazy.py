"""An incoming baggage of Sentry entries only is kept whole and parsed on first use.

Whatever the header, what a `Baggage` shows (entries, third-party part, frozen or
not, the header it forwards, the entries `continue_trace` reads) is what parsing it
at once gives (`_parse_header`).
"""

from __future__ import annotations

import pytest

from tripwire.tracing._propagation import Baggage, PropagationContext, _parse_header

HEADERS = [
    "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,"
    "sentry-release=upstream%401.0,sentry-environment=production,sentry-sample_rate=0.5,"
    "sentry-sample_rand=0.250000,sentry-sampled=true",
    "sentry-a=1",
    "sentry-a=1,sentry-a=2",  # duplicates: the last wins, re-serialized
    "sentry-a=b=c,sentry-d=",
    "sentry-a=xsentry-b=1",
    "sentry-org_id=7,sentry-sample_rand=0.5",
    "sentry-a=1,vendor=x",  # third-party entries: parsed at once
    "sentry-a=1, sentry-b=2",  # blanks
    "sentry-rel%65ase=1",  # an escaped key
    "sentry-a",  # no value
    "sentry-a=1,",
    ",sentry-a=1",
    "sentry-=1",
    "vendor=x",
    "sentry-a=%zz",
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
def test_lazy_baggage_shows_what_parsing_gives(header: str) -> None:
    assert _state(Baggage.from_incoming_header(header)) == _state(
        _parse_header(Baggage, header, None)
    )


def test_sentry_only_header_is_forwarded_unparsed_and_parsed_on_first_use() -> None:
    header = HEADERS[0]
    baggage = Baggage.from_incoming_header(header)
    assert baggage._raw == header  # kept whole
    assert baggage._get("sample_rand") == "0.250000"
    assert baggage._raw == header  # reading one entry does not parse it
    assert baggage.sentry_items["release"] == "upstream@1.0"
    assert baggage._raw is None
    assert baggage.serialize() == header  # forwarded as received


def test_mutating_the_entries_of_a_lazy_baggage_changes_what_it_forwards() -> None:
    baggage = Baggage.from_incoming_header("sentry-a=1,sentry-sample_rate=0.5")
    baggage.sentry_items["sample_rate"] = "0.25"
    assert baggage.serialize() == "sentry-a=1,sentry-sample_rate=0.25"


def test_continue_trace_reads_sample_rand_and_org_without_parsing() -> None:
    context = PropagationContext.from_incoming_data(
        {
            "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
            "baggage": HEADERS[0],
        }
    )
    assert context is not None
    assert context.sample_rand == 0.25
    assert context.parent_sampled is True
    assert context.baggage is not None and context.baggage._raw is not None
    assert context.dynamic_sampling_context["release"] == "upstream@1.0"
