"""The `data_collection` option: what the SDK and its integrations may collect.

Behaviour of sentry_sdk 2.75:

* Given (a dict, also under `_experiments`), it is resolved against the spec's
  defaults (everything on, key/value collections in "denylist" mode) and stored
  back as `options["data_collection"]` with ``provided_by_user: True``; it then
  overrides `send_default_pii`, `include_local_variables` (`stack_frame_variables`)
  and `include_source_context` (`frame_context_lines`), and the default
  EventScrubber is not installed.
* Not given, the same shape is derived from `send_default_pii` (PII terms added to
  the deny lists), `include_local_variables` and `include_source_context`, with
  ``provided_by_user: False``; the legacy options keep deciding.

The collection rules below (`filter_key_values`, `filter_query_string`,
`request_headers`, `request_cookies`, `request_query`, `body_decision`) are what
web-framework integrations call with the client's options.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

SUBSTITUTE = "[Filtered]"

BODY_TYPES = ("incoming_request", "outgoing_request", "outgoing_response")
MODES = ("off", "denylist", "allowlist")
DEFAULT_CONTEXT_LINES = 5

# Key fragments that always mark a value as sensitive (case-insensitive substrings).
SENSITIVE_TERMS = (
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "key",
    "jwt",
    "bearer",
    "sso",
    "saml",
    "csrf",
    "xsrf",
    "credentials",
    "session",
    "sid",
    "identity",
)
# Added to the deny lists when the config is derived from send_default_pii=False.
PII_TERMS = ("forwarded", "-ip", "remote-", "via", "-user")
# Request headers removed without data_collection and without send_default_pii.
LEGACY_SENSITIVE_HEADERS = frozenset(
    {
        "X_FORWARDED_FOR",
        "SET_COOKIE",
        "COOKIE",
        "AUTHORIZATION",
        "PROXY_AUTHORIZATION",
        "X_API_KEY",
        "X_REAL_IP",
    }
)

_BODY_LIMITS = {"never": -1, "small": 10**3, "medium": 10**4}


# -- resolution ----------------------------------------------------------------------------


def from_legacy(
    send_default_pii: bool, local_variables: bool, source_context: bool
) -> dict[str, Any]:
    """The configuration `send_default_pii` and friends stand for (provided_by_user False)."""
    terms = [] if send_default_pii else list(PII_TERMS)
    return {
        "provided_by_user": False,
        "user_info": send_default_pii,
        "cookies": {"mode": "denylist", "terms": list(terms)},
        "http_headers": {"request": {"mode": "denylist", "terms": list(terms)}},
        "http_bodies": list(BODY_TYPES),
        "url_query_params": {"mode": "denylist", "terms": list(terms)},
        "graphql": {"document": send_default_pii, "variables": send_default_pii},
        "gen_ai": {"inputs": send_default_pii, "outputs": send_default_pii},
        "database_query_data": send_default_pii,
        "queues": send_default_pii,
        "stack_frame_variables": local_variables,
        "frame_context_lines": DEFAULT_CONTEXT_LINES if source_context else 0,
    }


def _key_values(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        value = {}
    mode = value.get("mode", "denylist")
    if mode not in MODES:
        raise ValueError(f"data_collection: collection mode must be one of {MODES}, got {mode!r}")
    out: dict[str, Any] = {"mode": mode}
    if value.get("terms") is not None:
        out["terms"] = list(value["terms"])
    return out


def _flags(value: Any, names: tuple[str, ...]) -> dict[str, Any]:
    given = value if isinstance(value, Mapping) else {}
    return {name: given.get(name, True) for name in names}


def _context_lines(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return DEFAULT_CONTEXT_LINES
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"data_collection: frame_context_lines must be an int >= 0, got {value!r}")
    return value


def from_user(given: Mapping[str, Any]) -> dict[str, Any]:
    """A user's `data_collection` dict with the spec's defaults filled in."""
    headers = given.get("http_headers")
    request_headers = headers.get("request") if isinstance(headers, Mapping) else None
    bodies = given.get("http_bodies")
    return {
        "provided_by_user": True,
        "user_info": given.get("user_info", True),
        "cookies": _key_values(given.get("cookies")),
        "http_headers": {"request": _key_values(request_headers)},
        "http_bodies": list(BODY_TYPES) if bodies is None else list(bodies),
        "url_query_params": _key_values(given.get("url_query_params")),
        "graphql": _flags(given.get("graphql"), ("document", "variables")),
        "gen_ai": _flags(given.get("gen_ai"), ("inputs", "outputs")),
        "database_query_data": given.get("database_query_data", True),
        "queues": given.get("queues", True),
        "stack_frame_variables": bool(given.get("stack_frame_variables", True)),
        "frame_context_lines": _context_lines(given.get("frame_context_lines")),
    }


def resolve(options: dict[str, Any]) -> dict[str, Any]:
    """Resolve `options["data_collection"]` in place (see the module docstring); returns it.

    Raises:
        TypeError: `data_collection` is not a dict.
        ValueError: an unknown collection mode or a bad `frame_context_lines`.
    """
    given = options.get("data_collection")
    if given is None:
        experiments = options.get("_experiments")
        if isinstance(experiments, Mapping):
            given = experiments.get("data_collection")
    if given is None:
        resolved = from_legacy(
            bool(options.get("send_default_pii")),
            options.get("include_local_variables") is not False,
            options.get("include_source_context") is not False,
        )
    else:
        if not isinstance(given, dict):
            raise TypeError(f"data_collection must be a dict, got {type(given).__name__!r}")
        resolved = from_user(given)
    options["data_collection"] = resolved
    return resolved


def enabled(options: Mapping[str, Any]) -> bool:
    """Whether the user configured `data_collection` (then it, not send_default_pii, decides)."""
    config = options.get("data_collection")
    return isinstance(config, Mapping) and bool(config.get("provided_by_user"))


def user_info(options: Mapping[str, Any]) -> bool:
    """Whether the user's identity and address may be sent: `data_collection`'s
    ``user_info`` when the user set that option, else ``send_default_pii``."""
    if enabled(options):
        return bool(options["data_collection"].get("user_info"))
    return bool(options.get("send_default_pii"))


def local_variables(options: Mapping[str, Any]) -> bool:
    """Whether frames carry `vars`."""
    if enabled(options):
        return bool(options["data_collection"]["stack_frame_variables"])
    return bool(options.get("include_local_variables", True))


def context_lines(options: Mapping[str, Any]) -> int:
    """Source lines kept around each frame's line (0: no source context)."""
    if enabled(options):
        return int(options["data_collection"]["frame_context_lines"])
    return DEFAULT_CONTEXT_LINES if options.get("include_source_context", True) else 0


# -- rules ----------------------------------------------------------------------------------


def is_sensitive_key(key: str, extra_terms: Iterable[str] | None = None) -> bool:
    """Whether `key` contains (case-insensitively) a sensitive term, built-in or extra."""
    lowered = key.lower()
    if any(term in lowered for term in SENSITIVE_TERMS):
        return True
    return any(term.lower() in lowered for term in extra_terms or ())


def _keeps(key: Any, behaviour: Mapping[str, Any]) -> bool:
    name = key if isinstance(key, str) else str(key)
    terms = behaviour.get("terms") or ()
    if behaviour.get("mode") == "allowlist":
        lowered = name.lower()
        return not is_sensitive_key(name) and any(t.lower() in lowered for t in terms)
    return not is_sensitive_key(name, terms)


def filter_key_values(
    items: Mapping[Any, Any], behaviour: Mapping[str, Any], substitute: Any = SUBSTITUTE
) -> dict[Any, Any]:
    """Apply a key/value collection behaviour (cookies, headers): {} when "off"."""
    if behaviour.get("mode") == "off":
        return {}
    return {k: (v if _keeps(k, behaviour) else substitute) for k, v in items.items()}


def filter_query_string(query: str, behaviour: Mapping[str, Any]) -> str | None:
    """Apply the url_query_params behaviour to a raw query string; None for nothing to send.

    The result is re-encoded (blank values kept); a filtered parameter appears once.
    """
    if behaviour.get("mode") == "off" or not query:
        return None

    parsed = parse_qs(query, keep_blank_values=True)
    pairs: list[tuple[str, str]] = []
    for key, values in parsed.items():
        if _keeps(key, behaviour):
            pairs.extend((key, value) for value in values)
        else:
            pairs.append((key, SUBSTITUTE))
    return urlencode(pairs) or None


def request_headers(
    headers: Mapping[str, Any], options: Mapping[str, Any], substitute: Any = SUBSTITUTE
) -> dict[str, Any]:
    """An incoming request's headers as an event may carry them."""
    if enabled(options):
        behaviour = options["data_collection"]["http_headers"]["request"]
        out = filter_key_values(headers, behaviour)
        for key in out:
            if isinstance(key, str) and key.lower() in ("cookie", "set-cookie"):
                out[key] = SUBSTITUTE
        return out
    if options.get("send_default_pii"):
        return dict(headers)
    return {
        k: (substitute if k.upper().replace("-", "_") in LEGACY_SENSITIVE_HEADERS else v)
        for k, v in headers.items()
    }


def request_cookies(
    cookies: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, Any] | None:
    """An incoming request's cookies as an event may carry them; None: leave them out."""
    if enabled(options):
        kept = filter_key_values(cookies, options["data_collection"]["cookies"])
        return kept or None
    if options.get("send_default_pii"):
        return dict(cookies)
    return None


def request_query(query: str, options: Mapping[str, Any]) -> str | None:
    """An incoming request's query string as an event may carry it; None: leave it out."""
    if enabled(options):
        return filter_query_string(query, options["data_collection"]["url_query_params"])
    return query


def body_decision(options: Mapping[str, Any], kind: str, length: int) -> str:
    """Whether a body of `kind` (see BODY_TYPES) and `length` bytes is collected.

    Returns "collect", "off" (leave it out) or "too_large" (sentry_sdk then marks it
    removed for its size). `max_request_body_size` bounds it in both configurations.
    """
    if enabled(options) and kind not in options["data_collection"]["http_bodies"]:
        return "off"
    limit = _BODY_LIMITS.get(options.get("max_request_body_size", "medium"))
    if limit is not None and length > limit:
        return "too_large"
    return "collect"
