"""Grouping: which issue an error event belongs to, and how the issue is titled.

The rules, in order:

1. the event's ``fingerprint`` when it has one; ``{{ default }}`` in it stands for
   the default components below, and a few other variables (``{{ transaction }}``,
   ``{{ type }}``, ``{{ error.value }}``, ``{{ level }}``, ``{{ logger }}``,
   ``{{ function }}``, ``{{ module }}``, ``{{ message }}``) for event fields;
2. otherwise each exception of the chain: its type plus its in-app frames (module,
   or file, and function; line numbers are left out so that editing a file above
   the error keeps the issue); all frames when none is in-app; the exception's
   value, with numbers and ids masked, when it has no stack trace;
3. otherwise the message template (``logentry.message`` before its parameters are
   filled in; a plain message has its numbers and ids masked).

Everything here is pure: it reads the event and never raises on odd input.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Optional

# A fingerprint entry like "{{ default }}" or "{{default}}".
_VARIABLE = re.compile(r"^\{\{\s*([\w.]+)\s*\}\}$")

# Masks applied to free text (messages without a template, exception values without
# frames), so that "user 123 not found" and "user 456 not found" group together.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<ip>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<hash>"),
    (re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])"), "<num>"),
)

_MAX_TITLE = 200

# Fingerprint variables with two spellings.
_ALIASES = {"type": "error.type", "value": "error.value"}


class Grouping:
    """The result of grouping one event."""

    __slots__ = ("components", "culprit", "hash", "title", "type", "value")

    def __init__(
        self, components: list[str], title: str, culprit: str, type: str, value: str
    ) -> None:
        self.components = components
        self.hash = hashlib.sha1("\x1f".join(components).encode("utf-8")).hexdigest()  # noqa: S324 -- a grouping key, not a secret
        self.title = title
        self.culprit = culprit
        self.type = type
        self.value = value

    def __repr__(self) -> str:
        return f"<Grouping {self.hash[:12]} {self.title!r}>"


def group_event(event: dict[str, Any]) -> Grouping:
    """Group `event`: its hash, components, title and culprit."""
    default = default_components(event)
    components = default
    fingerprint = event.get("fingerprint")
    if isinstance(fingerprint, list) and fingerprint:
        expanded = _expand_fingerprint(event, fingerprint, default)
        if expanded is not None:
            components = expanded
    exc_type, exc_value = _main_exception(event)
    return Grouping(
        components=components,
        title=event_title(event),
        culprit=event_culprit(event),
        type=exc_type,
        value=exc_value,
    )


def default_components(event: dict[str, Any]) -> list[str]:
    """The grouping components without a fingerprint (rules 2 and 3 above)."""
    exceptions = _exceptions(event)
    if exceptions:
        parts = ["exception"]
        for exc in exceptions:
            parts.extend(_exception_components(exc))
        return parts
    template = message_template(event)
    if template:
        return ["message", template]
    # Nothing to group by: events of this kind share one issue per level and logger.
    return ["empty", _text(event.get("level")) or "error", _text(event.get("logger"))]


def message_template(event: dict[str, Any]) -> str:
    """The message an event is grouped by: the template, or the masked message."""
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        template = _text(logentry.get("message"))
        if template:
            return template[:1000] if logentry.get("params") else mask(template[:1000])
        formatted = _text(logentry.get("formatted"))
        if formatted:
            return mask(formatted[:1000])
    message = event.get("message")
    if isinstance(message, dict):
        template = _text(message.get("message")) or _text(message.get("formatted"))
        if template:
            return template[:1000] if message.get("params") else mask(template[:1000])
        return ""
    return mask(_text(message)[:1000])


def mask(text: str) -> str:
    """`text` with numbers, hex, ids and IP addresses replaced by placeholders."""
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text


def event_title(event: dict[str, Any]) -> str:
    """The one-line title: ``Type: value`` for errors, else the message's first line."""
    exc_type, exc_value = _main_exception(event)
    if exc_type or exc_value:
        title = f"{exc_type}: {exc_value}" if exc_type and exc_value else exc_type or exc_value
    else:
        title = formatted_message(event) or _text(event.get("transaction")) or "<unlabeled event>"
    line = title.strip().splitlines()[0] if title.strip() else title
    return line[:_MAX_TITLE]


def formatted_message(event: dict[str, Any]) -> str:
    """The event's message as a user would read it (parameters filled in).

    ``formatted`` when the sender gave it, else the template with its ``params``
    applied by `apply_params` (grouping keeps using the template: see
    `message_template`).
    """
    for key in ("logentry", "message"):
        value = event.get(key)
        if isinstance(value, dict):
            text = _text(value.get("formatted"))
            if text:
                return text
            template = _text(value.get("message"))
            if template:
                return apply_params(template, value.get("params"))
        elif isinstance(value, str) and value:
            return value
    return ""


# A printf-style conversion as Python's logging uses them: %s, %d, %(name)s, %%, with
# flags, width and precision (read, then ignored: see `apply_params`).
_CONVERSION = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?"
    r"(?P<kind>[diouxXeEfFgGcrsa%])"
)

# Enough for a title and the message shown on the issue page.
_MAX_FORMATTED = 10_000


def apply_params(template: str, params: Any) -> str:
    """`template` with printf-style `params` (a list, or a dict for ``%(name)s``) filled in.

    Safe on any input: never Python's ``%`` operator (a width like ``%999999999d``
    would build a huge string, a wrong type would raise); each conversion becomes
    the parameter as text, a missing one stays as written, and the result is bounded.
    """
    if isinstance(params, (list, tuple)):
        positional: list[Any] = list(params)
        named: dict[str, Any] = {}
    elif isinstance(params, dict):
        positional, named = [], params
    elif params is None or params == "":
        return template
    else:
        positional, named = [params], {}
    position = 0

    def fill(match: re.Match[str]) -> str:
        nonlocal position
        if match.group("kind") == "%":
            return "%"
        name = match.group("name")
        if name is not None:
            if name in named:
                return _param_text(named[name], match.group("kind"))
            return match.group(0)
        if position < len(positional):
            position += 1
            return _param_text(positional[position - 1], match.group("kind"))
        return match.group(0)

    return _CONVERSION.sub(fill, template[:_MAX_FORMATTED])[:_MAX_FORMATTED]


def _param_text(value: Any, kind: str) -> str:
    try:
        return _param_str(value, kind)
    except ValueError:  # an int past Python's digit limit
        return "?"


def _param_str(value: Any, kind: str) -> str:
    if kind == "r" and isinstance(value, str):
        return repr(value)[:_MAX_FORMATTED]
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (str, int, float)):
        return str(value)[:_MAX_FORMATTED]
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:_MAX_FORMATTED]
    except (ValueError, TypeError, RecursionError):
        return "?"


def event_culprit(event: dict[str, Any]) -> str:
    """Where it happened: the transaction, else the innermost in-app frame."""
    transaction = _text(event.get("transaction"))
    if transaction:
        return transaction[:_MAX_TITLE]
    exceptions = _exceptions(event)
    if exceptions:
        frames = _frames(exceptions[-1])
        in_app = [f for f in frames if f.get("in_app") is True] or frames
        if in_app:
            frame = in_app[-1]
            where = _text(frame.get("module")) or _text(frame.get("filename"))
            function = _text(frame.get("function")) or "?"
            return f"{where} in {function}"[:_MAX_TITLE]
    return _text(event.get("culprit"))[:_MAX_TITLE]


def _expand_fingerprint(
    event: dict[str, Any], fingerprint: list[Any], default: list[str]
) -> Optional[list[str]]:
    parts: list[str] = []
    only_default = True
    for entry in fingerprint:
        text = _text(entry)
        match = _VARIABLE.match(text.strip())
        if match is None:
            only_default = False
            parts.append("=" + text)
            continue
        name = _ALIASES.get(match.group(1).lower(), match.group(1).lower())
        if name == "default":
            parts.extend(default)
            continue
        only_default = False
        parts.append(f"{name}={_variable(event, name)}")
    if only_default:
        # ["{{ default }}"] must land in the same issue as no fingerprint at all.
        return None
    return ["fingerprint", *parts]


def _variable(event: dict[str, Any], name: str) -> str:
    exc_type, exc_value = _main_exception(event)
    if name == "transaction":
        return _text(event.get("transaction")) or "<no-transaction>"
    if name == "error.type":
        return exc_type or "<no-type>"
    if name == "error.value":
        return exc_value or "<no-value>"
    if name == "level":
        return _text(event.get("level")) or "error"
    if name == "logger":
        return _text(event.get("logger")) or "<no-logger>"
    if name == "message":
        return message_template(event) or "<no-message>"
    if name in ("function", "module"):
        exceptions = _exceptions(event)
        frames = _frames(exceptions[-1]) if exceptions else []
        in_app = [f for f in frames if f.get("in_app") is True] or frames
        if in_app:
            return _text(in_app[-1].get(name)) or f"<no-{name}>"
        return f"<no-{name}>"
    return "<unknown-variable>"


def _exceptions(event: dict[str, Any]) -> list[dict[str, Any]]:
    exception = event.get("exception")
    if isinstance(exception, dict):
        values = exception.get("values")
    elif isinstance(exception, list):
        values = exception
    else:
        return []
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, dict)]


def _frames(exc: dict[str, Any]) -> list[dict[str, Any]]:
    stacktrace = exc.get("stacktrace")
    if not isinstance(stacktrace, dict):
        return []
    frames = stacktrace.get("frames")
    if not isinstance(frames, list):
        return []
    return [f for f in frames if isinstance(f, dict)]


def _exception_components(exc: dict[str, Any]) -> list[str]:
    parts = ["type=" + _text(exc.get("type"))]
    frames = _frames(exc)
    chosen = [f for f in frames if f.get("in_app") is True] or frames
    if chosen:
        for frame in chosen:
            where = _text(frame.get("module")) or _file_key(_text(frame.get("filename")))
            parts.append(f"frame={where}:{_text(frame.get('function'))}")
    else:
        parts.append("value=" + mask(_text(exc.get("value"))[:1000]))
    return parts


def _file_key(filename: str) -> str:
    # Absolute prefixes differ between machines and virtualenvs; the tail does not.
    return "/".join(filename.replace("\\", "/").split("/")[-2:])


def _main_exception(event: dict[str, Any]) -> tuple[str, str]:
    exceptions = _exceptions(event)
    if not exceptions:
        return "", ""
    # The last value of the chain is the exception that was raised last.
    exc = exceptions[-1]
    return _text(exc.get("type")), _text(exc.get("value"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)
