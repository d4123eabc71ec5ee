"""The answer side of a Gemini call as span data: finish reasons, usage, tool calls, text.

A streamed answer is folded chunk by chunk into a `StreamedAnswer` (nothing of the
chunks is kept but the text, and that only when it may be sent); usage takes the
largest count seen, as sentry_sdk 2.75 does, so a stream cut short keeps what came.
"""

from __future__ import annotations

from typing import Any, Optional

from tripwire.ai.utils import set_data_normalized
from tripwire.consts import SPANDATA
from tripwire.integrations.google_genai._contents import text_of
from tripwire.utils import safe_serialize

# (span data key, usage fields): the fields are summed; zeros are not sent.
_USAGE_KEYS = (
    SPANDATA.GEN_AI_USAGE_INPUT_TOKENS,
    SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHED,
    SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS,
    SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS_REASONING,
    SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS,
)


def _count(usage: Any, name: str) -> int:
    value = getattr(usage, name, 0) or 0
    return value if isinstance(value, int) else 0


def usage_of(response: Any) -> tuple[int, int, int, int, int]:
    """(input, cached input, output, reasoning, total) tokens, in `_USAGE_KEYS` order.

    Input counts tool-use prompt tokens too; output counts the thoughts (Google
    reports them apart, sentry_sdk counts reasoning as part of the output).
    """
    usage = getattr(response, "usage_metadata", None)
    if usage is None:
        return 0, 0, 0, 0, 0
    thoughts = _count(usage, "thoughts_token_count")
    return (
        _count(usage, "prompt_token_count") + _count(usage, "tool_use_prompt_token_count"),
        _count(usage, "cached_content_token_count"),
        _count(usage, "candidates_token_count") + thoughts,
        thoughts,
        _count(usage, "total_token_count"),
    )


def _set_usage(span: Any, usage: tuple[int, ...]) -> None:
    for key, value in zip(_USAGE_KEYS, usage):
        if value:
            span.set_data(key, value)


def finish_reasons(response: Any) -> list[str]:
    """The candidates' finish reasons by name (``STOP``, not ``FinishReason.STOP``)."""
    out = []
    for candidate in getattr(response, "candidates", None) or ():
        reason = getattr(candidate, "finish_reason", None)
        if reason:
            out.append(str(reason).rsplit(".", 1)[-1])
    return out


def _call_data(call: Any, always_arguments: bool) -> dict[str, Any]:
    data = {"name": getattr(call, "name", None), "type": "function_call"}
    if (always_arguments and hasattr(call, "args")) or getattr(call, "args", None):
        data["arguments"] = safe_serialize(call.args)
    return data


def tool_calls(response: Any) -> list[dict[str, Any]]:
    """The function calls of the candidates, then those of automatic function calling."""
    out = []
    for candidate in getattr(response, "candidates", None) or ():
        content = getattr(candidate, "content", None)
        for part in getattr(content, "parts", None) or ():
            call = getattr(part, "function_call", None)
            if call:
                out.append(_call_data(call, False))
    for content in getattr(response, "automatic_function_calling_history", None) or ():
        for part in getattr(content, "parts", None) or ():
            call = getattr(part, "function_call", None)
            if call:
                out.append(_call_data(call, True))
    return out


def response_texts(response: Any) -> list[str]:
    """The text parts of the candidates."""
    out = []
    for candidate in getattr(response, "candidates", None) or ():
        content = getattr(candidate, "content", None)
        for part in getattr(content, "parts", None) or ():
            text = getattr(part, "text", None)
            if text:
                out.append(text)
    return out


def record_response(span: Any, response: Any, outputs: bool, tool_calls_allowed: bool) -> None:
    """The answer of a plain call on `span`; text only with `outputs`."""
    if not response:
        return
    reasons = finish_reasons(response)
    if reasons:
        set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_FINISH_REASONS, reasons)
    response_id = getattr(response, "response_id", None)
    if response_id is not None:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_ID, response_id)
    model = getattr(response, "model_version", None)
    if model is not None:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, model)
    _set_usage(span, usage_of(response))
    calls = tool_calls(response)
    if calls and tool_calls_allowed:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, safe_serialize(calls))
    if outputs:
        texts = response_texts(response)
        if texts:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_TEXT, safe_serialize(texts))


class StreamedAnswer:
    """What the chunks of a stream told so far."""

    __slots__ = ("chunks", "finish_reasons", "keep_text", "texts", "tool_calls", "usage")

    def __init__(self, keep_text: bool) -> None:
        self.keep_text = keep_text
        self.chunks = 0
        self.texts: list[str] = []
        self.finish_reasons: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.usage: Optional[tuple[int, ...]] = None

    def add(self, chunk: Any) -> None:
        self.chunks += 1
        if self.keep_text:
            for candidate in getattr(chunk, "candidates", None) or ():
                content = getattr(candidate, "content", None)
                if getattr(content, "parts", None):
                    text = text_of(content)
                    if text:
                        self.texts.append(text)
        self.finish_reasons.extend(finish_reasons(chunk))
        self.tool_calls.extend(tool_calls(chunk))
        usage = usage_of(chunk)
        self.usage = usage if self.usage is None else tuple(map(max, self.usage, usage))

    def record(self, span: Any, tool_calls_allowed: bool) -> None:
        """The folded answer on `span` (nothing when no chunk came)."""
        if not self.chunks:
            return
        if self.finish_reasons:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_FINISH_REASONS, self.finish_reasons)
        if self.usage is not None:
            _set_usage(span, self.usage)
        if self.tool_calls and tool_calls_allowed:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, safe_serialize(self.tool_calls))
        text = "".join(self.texts)
        if self.keep_text and text:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_TEXT, safe_serialize([text]))


def embeddings_tokens(response: Any) -> int:
    """Tokens counted by the embeddings' statistics (Vertex AI reports them)."""
    total = 0
    for embedding in getattr(response, "embeddings", None) or ():
        statistics = getattr(embedding, "statistics", None)
        count = getattr(statistics, "token_count", None) if statistics else None
        if count is not None:
            total += int(count)
    return total
