"""Helpers for gen_ai span data (as `sentry_sdk.ai.utils` 2.75).

- `set_data_normalized`: a value as span data; pydantic models (the LLM clients'
  types) are dumped, one-element lists unpacked (unless ``unpack=False``), anything
  that is not a scalar becomes a JSON string.
- Message roles normalised to ``system`` / ``user`` / ``assistant`` / ``tool``.
- Content parts of the providers (OpenAI ``image_url``, Anthropic ``source``, Google
  ``inline_data``, generic ``base64`` / ``url`` / ``file_id``) in one shape; inline
  blobs replaced by ``BLOB_DATA_SUBSTITUTE``.
- Truncation: chat inputs keep their last message (content cut to 10,000
  characters); embedding inputs keep the newest inputs that fit 20 KB of JSON.
"""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any, Callable, Optional

from tripwire import api
from tripwire._log import logger
from tripwire._types import BLOB_DATA_SUBSTITUTE
from tripwire.ai.consts import DATA_URL_BASE64_REGEX
from tripwire.scope._current import get_current_scope
from tripwire.tracing._api import child_of, sdk_start_transaction

MAX_GEN_AI_MESSAGE_BYTES = 20_000
MAX_SINGLE_MESSAGE_CONTENT_CHARS = 10_000


class GEN_AI_ALLOWED_MESSAGE_ROLES:
    """The four roles gen_ai messages are reported with."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


GEN_AI_MESSAGE_ROLE_REVERSE_MAPPING: dict[str, list[str]] = {
    GEN_AI_ALLOWED_MESSAGE_ROLES.SYSTEM: ["system"],
    GEN_AI_ALLOWED_MESSAGE_ROLES.USER: ["user", "human"],
    GEN_AI_ALLOWED_MESSAGE_ROLES.ASSISTANT: ["assistant", "ai"],
    GEN_AI_ALLOWED_MESSAGE_ROLES.TOOL: ["tool", "tool_call"],
}

GEN_AI_MESSAGE_ROLE_MAPPING: dict[str, str] = {
    source: target
    for target, sources in GEN_AI_MESSAGE_ROLE_REVERSE_MAPPING.items()
    for source in sources
}

_SCALARS = (int, float, bool, str)


# -- content parts ---------------------------------------------------------------------


def parse_data_uri(url: str) -> tuple[str, str]:
    """Split a ``data:`` URI (RFC 2397) into (mime type, content).

    Raises:
        ValueError: `url` has no comma between header and data.
    """
    header, sep, content = url.partition(",")
    if not sep:
        raise ValueError("Invalid data URI: missing comma separator")
    if header.startswith("data:"):
        header = header[5:]
    return header.split(";", 1)[0], content


def get_modality_from_mime_type(mime_type: str) -> str:
    """``image``, ``audio``, ``video`` or ``document`` for a MIME type (``image`` if unknown)."""
    lowered = (mime_type or "").lower()
    for prefix, modality in (("image/", "image"), ("audio/", "audio"), ("video/", "video")):
        if lowered.startswith(prefix):
            return modality
    if lowered.startswith(("application/", "text/")):
        return "document"
    return "image"


def _part(kind: str, modality: str, mime_type: str, key: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "modality": modality, "mime_type": mime_type, key: value}


def transform_openai_content_part(content_part: Any) -> Optional[dict[str, Any]]:
    """An OpenAI / LiteLLM ``image_url`` part in the common shape; None for other parts."""
    if not isinstance(content_part, dict) or content_part.get("type") != "image_url":
        return None
    image_url = content_part.get("image_url")
    if isinstance(image_url, dict):
        url = image_url.get("url", "")
    elif isinstance(image_url, str):
        url = image_url
    else:
        return None
    if not url:
        return None
    if url.startswith("data:"):
        try:
            mime_type, content = parse_data_uri(url)
        except ValueError:
            return _part("uri", "image", "", "uri", url)
        return _part("blob", get_modality_from_mime_type(mime_type), mime_type, "content", content)
    return _part("uri", "image", "", "uri", url)


_SOURCE_KINDS = {"base64": ("blob", "content", "data"), "url": ("uri", "uri", "url")}
_SOURCE_KINDS["file"] = ("file", "file_id", "file_id")


def transform_anthropic_content_part(content_part: Any) -> Optional[dict[str, Any]]:
    """An Anthropic ``image`` / ``document`` part (with a ``source``) in the common shape."""
    if not isinstance(content_part, dict):
        return None
    block_type = content_part.get("type")
    if block_type not in ("image", "document") or "source" not in content_part:
        return None
    source = content_part.get("source")
    if not isinstance(source, dict):
        return None
    kind = _SOURCE_KINDS.get(source.get("type"))  # type: ignore[arg-type]
    if kind is None:
        return None
    media_type = source.get("media_type", "")
    modality = "document" if block_type == "document" else get_modality_from_mime_type(media_type)
    return _part(kind[0], modality, media_type, kind[1], source.get(kind[2], ""))


def transform_google_content_part(content_part: Any) -> Optional[dict[str, Any]]:
    """A Google GenAI ``inline_data`` / ``file_data`` part in the common shape."""
    if not isinstance(content_part, dict):
        return None
    for key, kind, field, out_key in (
        ("inline_data", "blob", "data", "content"),
        ("file_data", "uri", "file_uri", "uri"),
    ):
        if key in content_part:
            data = content_part.get(key)
            if not isinstance(data, dict):
                return None
            mime_type = data.get("mime_type", "")
            return _part(
                kind,
                get_modality_from_mime_type(mime_type),
                mime_type,
                out_key,
                data.get(field, ""),
            )
    return None


def transform_generic_content_part(content_part: Any) -> Optional[dict[str, Any]]:
    """A generic (LangChain-style) ``image`` / ``audio`` / ``video`` / ``file`` part."""
    if not isinstance(content_part, dict):
        return None
    block_type = content_part.get("type")
    if block_type not in ("image", "audio", "video", "file") or "source" in content_part:
        return None
    mime_type = content_part.get("mime_type", "")
    modality = "document" if block_type == "file" else str(block_type)
    for key, kind, out_key in (
        ("base64", "blob", "content"),
        ("url", "uri", "uri"),
        ("file_id", "file", "file_id"),
    ):
        if key in content_part:
            return _part(kind, modality, mime_type, out_key, content_part.get(key, ""))
    return None


_TRANSFORMS = (
    transform_openai_content_part,
    transform_google_content_part,
    transform_anthropic_content_part,
    transform_generic_content_part,
)


def transform_content_part(content_part: Any) -> Optional[dict[str, Any]]:
    """Any provider's content part in the common shape (OpenAI, Google, Anthropic, generic)."""
    if not isinstance(content_part, dict):
        return None
    for transform in _TRANSFORMS:
        result = transform(content_part)
        if result is not None:
            return result
    return None


def transform_message_content(content: Any) -> Any:
    """A message's content with each recognised part in the common shape."""
    if isinstance(content, (list, tuple)):
        out = []
        for item in content:
            result = transform_content_part(item) if isinstance(item, dict) else None
            out.append(item if result is None else result)
        return out
    return content


# -- span data -------------------------------------------------------------------------


def _normalize_data(data: Any, unpack: bool = True) -> Any:
    if hasattr(data, "model_dump"):
        if inspect.isclass(data):
            return f"<ClassType: {data.__name__}>"
        try:
            return _normalize_data(data.model_dump(), unpack=unpack)
        except Exception as exc:  # a broken model must not break the call
            logger.warning("Could not convert pydantic data to JSON: %s", exc)
            return data if isinstance(data, _SCALARS) else str(data)
    if isinstance(data, list):
        if unpack and len(data) == 1:
            return _normalize_data(data[0], unpack=unpack)
        return [_normalize_data(item, unpack=unpack) for item in data]
    if isinstance(data, dict):
        return {key: _normalize_data(value, unpack=unpack) for key, value in data.items()}
    return data if isinstance(data, _SCALARS) else str(data)


def set_data_normalized(span: Any, key: str, value: Any, unpack: bool = True) -> None:
    """Set `value` as span data `key`: scalars as they are, anything else as JSON."""
    normalized = _normalize_data(value, unpack=unpack)
    if isinstance(normalized, _SCALARS):
        _set_span_data_attribute(span, key, normalized)
    else:
        _set_span_data_attribute(span, key, json.dumps(normalized))


def _set_span_data_attribute(span: Any, key: str, value: Any) -> None:
    set_data = getattr(span, "set_data", None)
    if set_data is None:  # a streamed span (attributes, no data)
        span.set_attribute(key, value)
    else:
        set_data(key, value)


def normalize_message_role(role: str) -> str:
    """`role` as one of the four gen_ai roles (``ai`` -> ``assistant``...); others unchanged."""
    return GEN_AI_MESSAGE_ROLE_MAPPING.get(role, role)


def normalize_message_roles(messages: list[Any]) -> list[Any]:
    """A new list: each dict message copied with its role normalised."""
    out = []
    for message in messages:
        if isinstance(message, dict) and "role" in message:
            message = dict(message)
            message["role"] = normalize_message_role(message["role"])
        elif isinstance(message, dict):
            message = dict(message)
        out.append(message)
    return out


def get_start_span_function() -> Callable[..., Any]:
    """`start_span` when the current span belongs to a transaction, else
    `start_transaction`, as sentry_sdk 2.75's (under span streaming, where there is no
    such span, `start_transaction`: a warning and a NoOpSpan).

    tripwire's integrations call `sdk_start_span_function`.
    """
    span = get_current_scope()._d.span
    if (
        span is not None
        and not getattr(span, "_streamed", False)
        and getattr(span, "containing_transaction", None) is not None
    ):
        return _start_child_span
    return api.start_transaction


def sdk_start_span_function() -> Callable[..., Any]:
    """What integrations start a span with: a child of the current span (of either span
    model) when it belongs to a transaction or segment, else `sdk_start_transaction` (a
    segment under streaming)."""
    span = get_current_scope()._d.span
    if span is not None and getattr(span, "containing_transaction", None) is not None:
        return _start_child_span
    return sdk_start_transaction


def _start_child_span(**kwargs: Any) -> Any:
    # Active in the current scope (or the one given) once entered, as `start_span`'s.
    current = get_current_scope()
    return child_of(current._d.span, kwargs.pop("scope", None) or current, None, kwargs)


# -- truncation ------------------------------------------------------------------------


def _truncate_single_message_content_if_present(message: Any, max_chars: int) -> Any:
    # Cuts `message` in place: callers pass a copy.
    if not isinstance(message, dict) or "content" not in message:
        return message
    content = message["content"]
    if isinstance(content, str):
        if len(content) > max_chars:
            message["content"] = content[:max_chars] + "..."
    elif isinstance(content, list):
        budget = max_chars
        for item in content:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                text = item["text"]
                if len(text) > budget:
                    item["text"] = text[:budget] + "..."
                    budget = 0
                else:
                    budget -= len(text)
    return message


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _find_truncation_index(messages: list[dict[str, Any]], max_bytes: int) -> int:
    total = 0
    for index in range(len(messages) - 1, -1, -1):
        total += _json_size(messages[index])
        if total > max_bytes:
            return index + 1
    return 0


def _is_image_type_with_blob_content(item: dict[str, Any]) -> bool:
    if item.get("type") != "image_url":
        return False
    value = item.get("image_url")
    url = value.get("url", "") if isinstance(value, dict) else (value or "")
    return bool(DATA_URL_BASE64_REGEX.match(url))


def _is_blob(item: Any) -> bool:
    return isinstance(item, dict) and (
        item.get("type") == "blob" or _is_image_type_with_blob_content(item)
    )


def _has_blob(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    content = message.get("content")
    return isinstance(content, list) and any(_is_blob(item) for item in content)


def redact_blob_message_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages`, or a deep copy with inline blobs replaced by ``BLOB_DATA_SUBSTITUTE``."""
    if not any(_has_blob(message) for message in messages):
        return messages
    redacted = copy.deepcopy(messages)
    for message in redacted:
        if not _has_blob(message):
            continue
        for item in message["content"]:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "blob":
                item["content"] = BLOB_DATA_SUBSTITUTE
            elif _is_image_type_with_blob_content(item):
                if isinstance(item["image_url"], dict):
                    item["image_url"]["url"] = BLOB_DATA_SUBSTITUTE
                else:
                    item["image_url"] = BLOB_DATA_SUBSTITUTE
    return redacted


def truncate_messages_by_size(
    messages: list[dict[str, Any]],
    max_bytes: int = MAX_GEN_AI_MESSAGE_BYTES,
    max_single_message_chars: int = MAX_SINGLE_MESSAGE_CONTENT_CHARS,
) -> tuple[list[dict[str, Any]], int]:
    """The newest messages whose JSON fits `max_bytes`, and how many were left out.

    At least the last message is kept (its content cut to `max_single_message_chars`
    characters when it is alone).
    """
    if _json_size(messages) <= max_bytes:
        return messages, 0
    start = _find_truncation_index(messages, max_bytes)
    if start >= len(messages):
        start = len(messages) - 1
    kept = messages[start:]
    if len(kept) == 1:
        kept[0] = _truncate_single_message_content_if_present(
            copy.deepcopy(kept[0]), max_chars=max_single_message_chars
        )
    return kept, start


# span id -> how many messages the call had, for spans whose messages were cut; read
# (and emptied) by `annotate_truncated_messages` when the transaction is sent. Bounded:
# spans that are never sent must not pile up.
_original_counts: dict[str, int] = {}
_MAX_PENDING = 1000


def _note_original_count(scope: Any, span: Any, count: int) -> None:
    # sentry_sdk keeps these on the scope; here one table serves every scope.
    if len(_original_counts) >= _MAX_PENDING:
        _original_counts.pop(next(iter(_original_counts)), None)
    _original_counts[span.span_id] = count


def annotate_truncated_messages(event: dict[str, Any], hint: Any) -> dict[str, Any]:
    """Give the cut ``gen_ai.request.messages`` of a transaction's spans their original
    length in `_meta` (``{"len": N}``), as sentry_sdk does; an event processor."""
    if not _original_counts or event.get("type") != "transaction":
        return event
    spans = event.get("spans")
    if not isinstance(spans, list):
        return event
    for index, span in enumerate(spans):
        if not isinstance(span, dict):
            continue
        count = _original_counts.pop(str(span.get("span_id")), None)
        if count is None or "gen_ai.request.messages" not in (span.get("data") or {}):
            continue
        node = event.setdefault("_meta", {}).setdefault("spans", {}).setdefault(str(index), {})
        node.setdefault("data", {})["gen_ai.request.messages"] = {"": {"len": count}}
    return event


def truncate_and_annotate_messages(
    messages: Optional[list[dict[str, Any]]],
    span: Any,
    scope: Any,
    max_single_message_chars: int = MAX_SINGLE_MESSAGE_CONTENT_CHARS,
) -> Optional[list[dict[str, Any]]]:
    """Chat input as sent: the last message only, blobs redacted, content cut."""
    if not messages:
        return None
    messages = redact_blob_message_parts(messages)
    last = _truncate_single_message_content_if_present(
        copy.deepcopy(messages[-1]), max_chars=max_single_message_chars
    )
    if len(messages) > 1:
        _note_original_count(scope, span, len(messages))
    return [last]


def truncate_and_annotate_embedding_inputs(
    messages: Optional[list[dict[str, Any]]],
    span: Any,
    scope: Any,
    max_bytes: int = MAX_GEN_AI_MESSAGE_BYTES,
) -> Optional[list[dict[str, Any]]]:
    """Embedding input as sent: the newest inputs that fit `max_bytes`, blobs redacted."""
    if not messages:
        return None
    messages = redact_blob_message_parts(messages)
    kept, removed = truncate_messages_by_size(messages, max_bytes)
    if removed > 0:
        _note_original_count(scope, span, len(messages))
    return kept


def set_conversation_id(conversation_id: str) -> None:
    """Set the conversation id that gen_ai spans finished in the current scope carry."""
    get_current_scope().set_conversation_id(conversation_id)
