"""sentry_sdk 2.75's ``integrations._wsgi_common``, for code written against it.

Framework integrations maintained outside sentry_sdk import from this private module:
they subclass `RequestExtractor` for their request object (implementing `env`,
`cookies`, `raw_data`, `form`, `files`...) and call
``RequestExtractor(request).extract_into_event(event)`` in an event processor, and
filter headers with `_filter_headers`. The request data made here follows tripwire's
rules for every web integration (`_common.web` and `_data_collection`):
`send_default_pii` or `data_collection` decide cookies and headers, and
`max_request_body_size` bounds the body, a body too large or raw marked removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, MutableMapping
from copy import deepcopy
from typing import Any, Optional, Union

from tripwire import _data_collection
from tripwire._log import logger
from tripwire.integrations._common.web import DEFAULT_HTTP_METHODS_TO_CAPTURE
from tripwire.scope._current import get_client
from tripwire.utils import AnnotatedValue

try:  # Django raises it for a body already read as a stream (Django REST framework)
    from django.http.request import RawPostDataException
except Exception:  # no Django (or one that fails to import): nothing of it to catch
    RawPostDataException = None
    _RAW_DATA_ERRORS: tuple[type[Exception], ...] = (ValueError,)
else:
    _RAW_DATA_ERRORS = (RawPostDataException, ValueError)

# WSGI environ keys (and, without ``HTTP_``, headers) that carry personal data.
SENSITIVE_ENV_KEYS = (
    "REMOTE_ADDR",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_SET_COOKIE",
    "HTTP_COOKIE",
    "HTTP_AUTHORIZATION",
    "HTTP_PROXY_AUTHORIZATION",
    "HTTP_X_API_KEY",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
)
SENSITIVE_HEADERS = tuple(key[5:] for key in SENSITIVE_ENV_KEYS if key.startswith("HTTP_"))

_FILTERED = _data_collection.SUBSTITUTE


def _options() -> Mapping[str, Any]:
    return get_client().options


def request_body_within_bounds(client: Any, content_length: int) -> bool:
    """Whether a body of `content_length` bytes is within `max_request_body_size`
    (False without a client)."""
    if client is None:
        return False
    limit = {"max_request_body_size": client.options["max_request_body_size"]}
    return _data_collection.body_decision(limit, "incoming_request", content_length) != (
        "too_large"
    )


class RequestExtractor:
    """Puts a request's cookies and body into an event's ``request``.

    Subclasses adapt a framework's request object: `env` (a WSGI-like environ, for
    ``CONTENT_LENGTH`` and ``CONTENT_TYPE``), `cookies`, `raw_data`, `form`, `files`
    and `size_of_file`; `is_json`, `json`, `parsed_body` and `content_length` have
    defaults built on those.
    """

    def __init__(self, request: Any) -> None:
        self.request = request

    def extract_into_event(self, event: dict[str, Any]) -> None:
        """Add the cookies and the body to ``event["request"]`` as the options allow
        (nothing without an active client); the event gets a copy of its request."""
        client = get_client()
        if not client.is_active():
            return
        options = client.options
        info = event.get("request", {})
        try:
            if _data_collection.enabled(options) or options.get("send_default_pii"):
                kept = _data_collection.request_cookies(dict(self.cookies()), options)
                if kept is not None:
                    info["cookies"] = kept
        except Exception:  # the extractor has no cookies: the event goes without
            pass
        try:
            data = self._data(options)
        except Exception:  # the extractor failed reading the body: the event goes without
            data = None
        if data is not None:
            info["data"] = data
        try:
            event["request"] = deepcopy(info)
        except Exception:  # something in it cannot be copied: keep it as it is
            event["request"] = info

    def _data(self, options: Mapping[str, Any]) -> Any:
        """The body as the event carries it (None: none), under the options' rules.

        Without a length (0: chunked or none) the body is still read, as sentry_sdk does.
        """
        decision = _data_collection.body_decision(
            options, "incoming_request", self.content_length()
        )
        if decision == "off":
            return None
        if decision == "too_large":
            return AnnotatedValue.removed_because_over_size_limit()
        raw = None
        try:
            # Read first: frameworks (Django) cache it for the parsers that follow.
            raw = self.raw_data()
        except _RAW_DATA_ERRORS:  # already read as a stream
            pass
        parsed = self.parsed_body()
        if parsed is not None:
            return parsed
        return AnnotatedValue.removed_because_raw_data() if raw else None

    def content_length(self) -> int:
        """``CONTENT_LENGTH`` of `env` (0 when absent or not a number)."""
        try:
            return int(self.env().get("CONTENT_LENGTH", 0))
        except ValueError:
            return 0

    def cookies(self) -> MutableMapping[str, Any]:
        raise NotImplementedError()

    def raw_data(self) -> Optional[Union[str, bytes]]:
        raise NotImplementedError()

    def form(self) -> Optional[dict[str, Any]]:
        raise NotImplementedError()

    def parsed_body(self) -> Optional[dict[str, Any]]:
        """Form fields with uploaded files marked removed, else the JSON body."""
        try:
            form = self.form()
        except Exception:
            form = None
        try:
            files = self.files()
        except Exception:
            files = None
        if not form and not files:
            return self.json()
        data: dict[str, Any] = dict(form.items()) if form else {}
        for key in files or ():
            data[key] = AnnotatedValue.removed_because_raw_data()
        return data

    def is_json(self) -> bool:
        return _is_json_content_type(self.env().get("CONTENT_TYPE"))

    def json(self) -> Optional[Any]:
        """The body decoded as JSON when its content type says JSON, else None."""
        try:
            if not self.is_json():
                return None
            try:
                raw = self.raw_data()
            except _RAW_DATA_ERRORS:  # already read by the framework
                return None
            if raw is None:
                return None
            return json.loads(raw if isinstance(raw, str) else raw.decode("utf-8"))
        except ValueError:
            return None

    def files(self) -> Optional[dict[str, Any]]:
        raise NotImplementedError()

    def size_of_file(self, file: Any) -> int:
        raise NotImplementedError()

    def env(self) -> dict[str, Any]:
        raise NotImplementedError()


def _is_json_content_type(ct: Optional[str]) -> bool:
    """Whether a content type (parameters allowed) is JSON: ``application/json`` or
    ``application/<anything>+json``."""
    media = (ct or "").split(";", 1)[0]
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _filter_headers(
    headers: Mapping[str, str], use_annotated_value: bool = True
) -> Mapping[str, Union[AnnotatedValue, str]]:
    """Request headers as an event may carry them under the current client's options:
    sensitive ones replaced by a value marked removed (`use_annotated_value`) or by
    ``[Filtered]``, all kept with `send_default_pii`, or as `data_collection` says."""
    substitute: Any = (
        AnnotatedValue.removed_because_over_size_limit() if use_annotated_value else _FILTERED
    )
    return _data_collection.request_headers(headers, _options(), substitute)


def _request_headers_to_span_attributes(headers: Mapping[str, str]) -> dict[str, Any]:
    """Filtered request headers as ``http.request.header.<name>`` attributes (a helper
    of sentry_sdk 3.0's pre-releases, imported by code written for them)."""
    filtered = _data_collection.request_headers(headers, _options())
    return {f"http.request.header.{key.lower()}": value for key, value in filtered.items()}


def _in_http_status_code_range(code: object, code_ranges: Iterable[Any]) -> bool:
    """Whether `code` is one of `code_ranges` (ints, or containers such as ranges)."""
    for target in code_ranges:
        if isinstance(target, int):
            if code == target:
                return True
            continue
        try:
            if code in target:
                return True
        except TypeError:
            logger.warning("failed_request_status_codes has to be a list of integers or containers")
    return False


class HttpCodeRangeContainer:
    """A list of status codes and ranges (sentry_sdk 1.x's `failed_request_status_codes`)
    usable where a container of codes is expected."""

    def __init__(self, code_ranges: list[Any]) -> None:
        self._code_ranges = code_ranges

    def __contains__(self, item: object) -> bool:
        return _in_http_status_code_range(item, self._code_ranges)


__all__ = [
    "DEFAULT_HTTP_METHODS_TO_CAPTURE",
    "SENSITIVE_ENV_KEYS",
    "SENSITIVE_HEADERS",
    "HttpCodeRangeContainer",
    "RawPostDataException",
    "RequestExtractor",
    "request_body_within_bounds",
]
