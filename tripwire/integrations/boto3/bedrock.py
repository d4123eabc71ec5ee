"""Bedrock runtime calls as ``gen_ai`` spans (as sentry_sdk 2.75's boto3 Bedrock extension).

For the ``bedrock-runtime`` service:

- ``Converse`` and ``ConverseStream`` spans have op ``gen_ai.chat`` and origin
  ``auto.ai.boto3`` (the name stays ``aws.bedrock-runtime.<Operation>``), with the
  provider (``aws.bedrock``), operation (``chat``), streaming flag, model id and
  ``inferenceConfig`` (max tokens, temperature, top p) as request data; the system
  instructions and input messages only with consent (`data_collection`'s
  ``gen_ai.inputs``, else ``send_default_pii``), the tool definitions unless
  `data_collection` denies inputs. The answer adds the token usage (input tokens include
  the cache read and write tokens), the finish reason and, with consent (``outputs``),
  the output message. Messages become ``{"role", "parts"}`` lists, binary content
  ``blob`` parts without their bytes.
- ``ConverseStream``'s span ends when its event stream is read to its end, fails, or is
  closed (a loop left early leaves it open until then); the events add the same data
  and ``gen_ai.response.time_to_first_chunk``.
- Every bedrock-runtime call gets a span under span streaming even outside a span (a
  segment of its own); a response body (``InvokeModel``) or event stream
  (``InvokeModelWithResponseStream``) of the other operations is not watched: their
  span ends when the call returns.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

from tripwire import _data_collection
from tripwire.consts import OP, SPANDATA
from tripwire.integrations.boto3._spans import finish, set_data
from tripwire.tracing._templates import may_collect

SERVICE_NAME = "bedrock-runtime"
ORIGIN = "auto.ai.boto3"
PROVIDER = "aws.bedrock"
_CHAT = ("Converse", "ConverseStream")
_WATCH = "_tripwire_bedrock_watch"
_MODALITIES = ("image", "video", "audio", "document")


class BedrockCall:
    """One bedrock-runtime call: what its span is, and what the answer adds to it."""

    __slots__ = ("chat", "operation", "started")

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.chat = operation in _CHAT
        self.started: Optional[float] = None

    def op(self) -> str:
        return OP.GEN_AI_CHAT if self.chat else OP.HTTP_CLIENT

    def origin(self, default: str) -> str:
        return ORIGIN if self.chat else default

    def request_data(self, params: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
        """The span's request data (empty for an operation other than a chat)."""
        if not self.chat:
            return {}
        data: dict[str, Any] = {
            SPANDATA.GEN_AI_PROVIDER_NAME: PROVIDER,
            SPANDATA.GEN_AI_OPERATION_NAME: "chat",
            SPANDATA.GEN_AI_RESPONSE_STREAMING: self.operation == "ConverseStream",
        }
        if params.get("modelId") is not None:
            data[SPANDATA.GEN_AI_REQUEST_MODEL] = params["modelId"]
        config = params.get("inferenceConfig")
        if isinstance(config, dict):
            for key, name in (
                (SPANDATA.GEN_AI_REQUEST_MAX_TOKENS, "maxTokens"),
                (SPANDATA.GEN_AI_REQUEST_TEMPERATURE, "temperature"),
                (SPANDATA.GEN_AI_REQUEST_TOP_P, "topP"),
            ):
                if config.get(name) is not None:
                    data[key] = config[name]
        if _data_collection.enabled(options) and not may_collect(options, "inputs"):
            return data
        if may_collect(options, "inputs"):
            system = params.get("system")
            if isinstance(system, (list, tuple)):
                _put_json(data, SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, _system_parts(system))
            messages = params.get("messages")
            if isinstance(messages, (list, tuple)):
                _put_json(data, SPANDATA.GEN_AI_INPUT_MESSAGES, _messages(messages))
        tool_config = params.get("toolConfig")
        if isinstance(tool_config, dict) and isinstance(tool_config.get("tools"), list):
            tools = _tool_definitions(tool_config["tools"])
            _put_json(data, SPANDATA.GEN_AI_TOOL_DEFINITIONS, tools)
        return data

    def responded(self, span: Any, parsed: Any, options: Mapping[str, Any]) -> bool:
        """Record the answer on `span`; True when a stream now owns the span's end."""
        if self.operation == "ConverseStream":
            stream = parsed.get("stream")
            if stream is None:
                return False
            watch = _StreamWatch(span, self.started, may_collect(options, "outputs"))
            setattr(stream, _WATCH, watch)
            return True
        if self.operation == "Converse":
            data = _usage_data(parsed.get("usage") or {})
            if parsed.get("stopReason") is not None:
                data[SPANDATA.GEN_AI_RESPONSE_FINISH_REASONS] = [parsed["stopReason"]]
            output = parsed.get("output") or {}
            if "message" in output and may_collect(options, "outputs"):
                _put_json(data, SPANDATA.GEN_AI_OUTPUT_MESSAGES, _messages([output["message"]]))
            set_data(span, data)
        return False


# -- messages ---------------------------------------------------------------------------


def _put_json(data: dict[str, Any], key: str, value: Any) -> None:
    try:
        data[key] = json.dumps(value)
    except (TypeError, ValueError):  # content JSON cannot carry: the key is left out
        pass


def _system_parts(system: Any) -> list[dict[str, Any]]:
    return [
        {"type": "text", "content": block["text"]}
        for block in system
        if isinstance(block, dict) and "text" in block
    ]


def _messages(messages: Any) -> list[dict[str, Any]]:
    """Converse messages (input and output share one shape) as role and parts."""
    found = []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            continue
        content = message.get("content")
        if not isinstance(content, (list, tuple)):
            continue
        parts = [part for part in map(_part, content) if part is not None]
        found.append({"role": message["role"], "parts": parts})
    return found


def _part(block: Any) -> Optional[dict[str, Any]]:
    if not isinstance(block, dict):
        return None
    if "text" in block:
        return {"type": "text", "content": block["text"]}
    if block.get("toolUse") is not None:
        use = block["toolUse"]
        part: dict[str, Any] = {"type": "tool_call"}
        if isinstance(use, dict):
            if "name" in use:
                part["name"] = use["name"]
            if "input" in use:
                part["arguments"] = use["input"]
        return part
    if block.get("toolResult") is not None:
        result = block["toolResult"]
        part = {"type": "tool_call_response"}
        if isinstance(result, dict) and isinstance(result.get("content"), (list, tuple)):
            part["response"] = _result_items(result["content"])
        return part
    if block.get("reasoningContent") is not None:
        reasoning = block["reasoningContent"]
        part = {"type": "reasoning"}
        text = reasoning.get("reasoningText") if isinstance(reasoning, dict) else None
        if isinstance(text, dict) and "text" in text:
            part["content"] = text["text"]
        return part
    for modality in _MODALITIES:
        media = _media_part(block.get(modality), modality)
        if media is not None:
            return media
    return None


def _media_part(media: Any, modality: str) -> Optional[dict[str, Any]]:
    """An image, video, audio or document block: its S3 location, or a blob (no bytes)."""
    source = media.get("source") if isinstance(media, dict) else None
    if not isinstance(source, dict):
        return None
    if "s3Location" in source:
        part = {"type": "uri", "modality": modality}
        location = source["s3Location"]
        if isinstance(location, dict) and "uri" in location:
            part["uri"] = location["uri"]
        return part
    if "bytes" in source:
        return {"type": "blob", "modality": modality}
    return None


def _result_items(content: Any) -> list[Any]:
    """A tool result's JSON and text items (no images or documents)."""
    return [i for i in content if isinstance(i, dict) and ("json" in i or "text" in i)]


def _tool_definitions(tools: list[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if "toolSpec" in tool:
            spec = tool["toolSpec"]
            definition: dict[str, Any] = {"type": "function"}
            if isinstance(spec, dict):
                for key in ("name", "description"):
                    if key in spec:
                        definition[key] = spec[key]
                schema = spec.get("inputSchema")
                if isinstance(schema, dict) and "json" in schema:
                    definition["parameters"] = schema["json"]
            found.append(definition)
        elif isinstance(tool.get("systemTool"), dict) and "name" in tool["systemTool"]:
            found.append({"type": tool["systemTool"]["name"]})
    return found


def _usage_data(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Token counts; the input tokens include the cache read and write tokens."""
    data: dict[str, Any] = {}
    if "outputTokens" in usage:
        data[SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS] = usage["outputTokens"]
    if "totalTokens" in usage:
        data[SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS] = usage["totalTokens"]
    input_tokens = usage.get("inputTokens", 0)
    for key, name in (
        (SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHED, "cacheReadInputTokens"),
        (SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE, "cacheWriteInputTokens"),
    ):
        if usage.get(name) is not None:
            input_tokens += usage[name]
            data[key] = usage[name]
    if "inputTokens" in usage:
        data[SPANDATA.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    return data


# -- ConverseStream ---------------------------------------------------------------------


class _StreamWatch:
    """The span of one ``ConverseStream`` call, fed its events until the stream ends."""

    __slots__ = ("outputs", "parts", "role", "span", "started")

    def __init__(self, span: Any, started: Optional[float], outputs: bool) -> None:
        self.span = span
        self.started = started
        self.outputs = outputs
        self.role: Optional[str] = None
        self.parts: dict[int, dict[str, Any]] = {}

    def event(self, event: Mapping[str, Any]) -> None:
        try:
            self._event(event)
        except Exception:  # a malformed event costs the span data, never the caller
            pass

    def _event(self, event: Mapping[str, Any]) -> None:
        if "metadata" in event:
            set_data(self.span, _usage_data(event["metadata"].get("usage") or {}))
            return
        if self.started is not None and "contentBlockDelta" in event:
            elapsed = time.perf_counter() - self.started
            set_data(self.span, {SPANDATA.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: elapsed})
            self.started = None
        stop = event.get("messageStop")
        if stop is not None:
            set_data(self.span, {SPANDATA.GEN_AI_RESPONSE_FINISH_REASONS: [stop["stopReason"]]})
        if not self.outputs:
            return
        if "messageStart" in event:
            self.role = event["messageStart"]["role"]
        elif stop is not None and self.role is not None:
            parts = [self.parts[index] for index in sorted(self.parts)]
            data: dict[str, Any] = {}
            _put_json(data, SPANDATA.GEN_AI_OUTPUT_MESSAGES, [{"role": self.role, "parts": parts}])
            set_data(self.span, data)
        elif "contentBlockStart" in event:
            self._block_start(event["contentBlockStart"])
        elif "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]
            self._delta(delta["contentBlockIndex"], delta["delta"])

    def _block_start(self, block: Mapping[str, Any]) -> None:
        start = block["start"]
        if "toolUse" in start:
            self.parts[block["contentBlockIndex"]] = {
                "type": "tool_call",
                "name": start["toolUse"]["name"],
            }
        elif "toolResult" in start:
            self.parts[block["contentBlockIndex"]] = {"type": "tool_call_response"}

    def _delta(self, index: int, delta: Mapping[str, Any]) -> None:
        part = self.parts.get(index)
        if "text" in delta:
            if part is None:
                self.parts[index] = {"type": "text", "content": delta["text"]}
            else:
                part["content"] += delta["text"]
        elif "toolUse" in delta:
            piece = delta["toolUse"]["input"]
            if part is None:
                self.parts[index] = {"type": "tool_call", "arguments": piece}
            else:
                part["arguments"] = part.get("arguments", "") + piece
        elif "toolResult" in delta:
            items = _result_items(delta["toolResult"])
            if part is None:
                self.parts[index] = {"type": "tool_call_response", "response": items}
            else:
                part["response"] = part.get("response", []) + items
        elif "reasoningContent" in delta:
            text = delta["reasoningContent"].get("text")
            if part is None:
                part = self.parts[index] = {"type": "reasoning"}
                if text is not None:
                    part["content"] = text
            elif text is not None:
                part["content"] = part.get("content", "") + text
        elif "image" in delta:
            media = _media_part(delta["image"], "image")
            if media is not None:
                self.parts[index] = media

    def end(self, stream: Any, error: Optional[BaseException]) -> None:
        """End the span once: the stream was read to its end, failed, or was closed."""
        if getattr(stream, _WATCH, None) is not self:
            return
        try:
            delattr(stream, _WATCH)
        except AttributeError:
            return
        finish(self.span, error)


def _watched(stream: Any, watch: _StreamWatch, events: Iterator[Any]) -> Iterator[Any]:
    try:
        for event in events:
            watch.event(event)
            yield event
    except GeneratorExit:  # a loop left early: the stream may still be read, or closed
        raise
    except BaseException as error:
        watch.end(stream, error)
        raise
    watch.end(stream, None)


def wrap_iter(original: Callable[..., Any]) -> Callable[..., Any]:
    """`EventStream.__iter__`, feeding a watched stream's events to its span."""

    @functools.wraps(original)
    def __iter__(self: Any) -> Any:
        watch = getattr(self, _WATCH, None)
        if watch is None:
            return original(self)
        return _watched(self, watch, original(self))

    return __iter__


def wrap_close(original: Callable[..., Any]) -> Callable[..., Any]:
    """`EventStream.close`, ending a watched stream's span."""

    @functools.wraps(original)
    def close(self: Any) -> Any:
        watch = getattr(self, _WATCH, None)
        if watch is None:
            return original(self)
        try:
            result = original(self)
        except BaseException as error:
            watch.end(self, error)
            raise
        watch.end(self, None)
        return result

    return close


__all__ = ["ORIGIN", "SERVICE_NAME", "BedrockCall", "wrap_close", "wrap_iter"]
