"""MCP integration: an ``mcp.server`` span for each tool call, prompt get and resource read
an `mcp` server handles.

As sentry_sdk 2.75's ``mcp`` integration (`MCPIntegration(include_prompts=True)`):

- mcp 2: a middleware appended to every `mcp.server.lowlevel.Server` built (the
  in-tree `MCPServer` builds one) sees ``tools/call``, ``prompts/get`` and
  ``resources/read``; mcp 1: the handlers registered with `Server.call_tool`,
  `get_prompt` and `read_resource` (and the standalone `fastmcp` package's prompt
  and resource handlers) are wrapped;
- a span ``mcp.server`` "tools/call NAME", "prompts/get NAME" or "resources/read URI"
  (origin ``auto.ai.mcp``): a child of the current span when it belongs to a
  transaction, else a transaction of its own; over Streamable HTTP, in the scopes of
  the HTTP request (so under the web framework's transaction);
- its data: the tool / prompt name or resource URI (and its scheme), the MCP method,
  the transport (``stdio``, ``http`` or ``sse``, with ``network.transport`` ``pipe``
  or ``tcp``), the request id and session id, and each argument
  (``mcp.request.argument.NAME``, JSON) unless `data_collection` forbids gen_ai inputs;
- the tool's result (``mcp.tool.result.content``) and a single-message prompt's role
  and text only when `data_collection`'s ``gen_ai`` outputs (prompts: inputs) allow
  it, or, without it, with ``send_default_pii`` and ``include_prompts``; a prompt's
  message count always;
- an exception from a handler is an event (mechanism ``mcp``, unhandled), the span
  ends ``internal_error``, and the exception goes on to the library (which may turn
  it into an error result, as `MCPServer` does with a tool's exception before the
  middleware sees it).

Difference, on purpose: with the integration off on the active client the handlers
run without spans (sentry_sdk 2.75 still starts them on mcp 1).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.utils import sdk_start_span_function
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_isolation_scope,
    use_isolation_scope,
    use_scope,
)
from tripwire.utils import safe_serialize

ORIGIN = "auto.ai.mcp"
_MARK = "__tripwire_mcp__"
# Where the HTTP request's scopes travel with it to the session's task (ASGI state).
_ISOLATION_KEY = "sentry_sdk.isolation_scope"
_CURRENT_KEY = "sentry_sdk.current_scope"

_TOOL = ("tools/call", SPANDATA.MCP_TOOL_NAME)
_PROMPT = ("prompts/get", SPANDATA.MCP_PROMPT_NAME)
_RESOURCE = ("resources/read", SPANDATA.MCP_RESOURCE_URI)


class MCPIntegration(Integration):
    """``mcp.server`` spans (and error events) for an MCP server's handlers."""

    identifier = "mcp"
    origin = ORIGIN

    def __init__(self, include_prompts: bool = True) -> None:
        """Args:
        include_prompts: Send tool results and prompt contents (with ``send_default_pii``).
        """
        self.include_prompts = include_prompts

    @staticmethod
    def setup_once() -> None:
        """Patch the server classes once `mcp` (or `fastmcp`) is imported.

        Raises:
            DidNotEnable: the MCP SDK is not installed, or older than 1.15.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("mcp") is None:
            raise DidNotEnable("MCP SDK not installed")
        version = package_version("mcp")
        _check_minimum_version(MCPIntegration, version)
        if version is not None and version >= (2, 0, 0):
            when_imported("mcp.server.lowlevel.server", _patch_server_v2)
        else:
            when_imported("mcp.server.lowlevel.server", _patch_server_v1)
            when_imported("fastmcp", _patch_fastmcp)
        when_imported("mcp.server.streamable_http", _patch_http_transport)


# -- the span --------------------------------------------------------------------------


class _Rules:
    """What the active client may send of the handlers' inputs and outputs."""

    __slots__ = ("client", "inputs", "outputs", "prompt_content")

    def __init__(self, client: Any, integration: MCPIntegration) -> None:
        self.client = client
        collection = client.options.get("data_collection")
        if isinstance(collection, dict) and collection.get("provided_by_user"):
            gen_ai = collection["gen_ai"]
            self.inputs, self.outputs = bool(gen_ai["inputs"]), bool(gen_ai["outputs"])
            self.prompt_content = self.inputs  # as sentry_sdk: a prompt's text is an input
        else:
            self.inputs = True
            pii = bool(client.options.get("send_default_pii") and integration.include_prompts)
            self.outputs = self.prompt_content = pii


def _request_facts(ctx: Any) -> tuple[Any, Optional[str], str]:
    """(request id, session id, transport) of a request context (None: stdio)."""
    if ctx is None:
        return None, None, "stdio"
    request = getattr(ctx, "request", None)
    if request is not None:
        query = getattr(request, "query_params", None)
        if query is not None and query.get("session_id"):
            return ctx.request_id, query.get("session_id"), "sse"
        if hasattr(request, "headers"):
            return ctx.request_id, request.headers.get("mcp-session-id"), "http"
    return ctx.request_id, None, "stdio"


@contextmanager
def _request_scopes(ctx: Any) -> Iterator[None]:
    """The scopes of the HTTP request `ctx` came with, if the transport kept them."""
    request = getattr(ctx, "request", None) if ctx is not None else None
    state = getattr(request, "scope", {}).get("state") if request is not None else None
    with ExitStack() as stack:
        if isinstance(state, dict):
            isolation, current = state.get(_ISOLATION_KEY), state.get(_CURRENT_KEY)
            if isolation is not None:
                stack.enter_context(use_isolation_scope(isolation))
            if current is not None:
                stack.enter_context(use_scope(current))
        yield


def _set_inputs(
    span: Any,
    kind: tuple[str, str],
    name: Any,
    arguments: Mapping[str, Any],
    ctx: Any,
) -> None:
    method, key = kind
    request_id, session_id, transport = _request_facts(ctx)
    span.set_data(key, name)
    span.set_data(SPANDATA.MCP_METHOD_NAME, method)
    span.set_data(SPANDATA.NETWORK_TRANSPORT, "pipe" if transport == "stdio" else "tcp")
    span.set_data(SPANDATA.MCP_TRANSPORT, transport)
    if request_id:
        span.set_data(SPANDATA.MCP_REQUEST_ID, request_id)
    if session_id:
        span.set_data(SPANDATA.MCP_SESSION_ID, session_id)
    for argument, value in arguments.items():
        span.set_data(f"mcp.request.argument.{argument}", safe_serialize(value))
    if kind is _RESOURCE and "://" in name:
        span.set_data(SPANDATA.MCP_RESOURCE_PROTOCOL, name.split("://", 1)[0])


async def _observe(
    kind: tuple[str, str],
    name: Any,
    arguments: Any,
    ctx: Any,
    run: Callable[[], Awaitable[Any]],
    record: Callable[[Any, Any, _Rules], None],
) -> Any:
    """Run the handler (`run`) in the span of one request, `record` its result."""
    client = get_client()
    integration = client.get_integration(MCPIntegration)
    if integration is None:
        return await run()
    rules = _Rules(client, integration)
    if not rules.inputs or not isinstance(arguments, Mapping):
        arguments = {}
    with _request_scopes(ctx):
        label = name if kind is not _RESOURCE else str(name)
        span = sdk_start_span_function()(op=OP.MCP_SERVER, name=f"{kind[0]} {label}", origin=ORIGIN)
        with span:
            try:
                _set_inputs(span, kind, label, arguments, ctx)
            except Exception:  # instrumentation must not break the handler
                pass
            try:
                result = await run()
            except Exception:
                capture_unhandled(client, sys.exc_info(), "mcp")
                raise
            try:
                record(span, result, rules)
            except Exception:  # instrumentation must not break the handler
                pass
    return result


# -- results ---------------------------------------------------------------------------


def _joined_text(blocks: Any) -> Any:
    texts = []
    try:
        for block in blocks:
            if hasattr(block, "text"):
                texts.append(block.text)
            elif isinstance(block, dict) and "text" in block:
                texts.append(block["text"])
    except Exception:  # not iterable after all: reported as it is
        return blocks
    return " ".join(texts) if texts else blocks


def _tool_content(result: Any) -> Any:
    """What a tool returned, for the span: structured content, else its text."""
    if result is None:
        return None
    if isinstance(result, dict):  # the wire form (mcp 2), or structured content (mcp 1)
        if "structuredContent" in result:
            return result["structuredContent"]
        if isinstance(result.get("content"), list):
            return _joined_text(result["content"])
        return result
    if isinstance(getattr(result, "content", None), list):
        structured = getattr(result, "structured_content", None)
        return structured if structured is not None else _joined_text(result.content)
    if isinstance(result, tuple) and len(result) == 2:  # (unstructured, structured)
        return result[1]
    if hasattr(result, "__iter__") and not isinstance(result, (str, bytes)):
        return _joined_text(result)
    return result


def _record_tool(span: Any, result: Any, rules: _Rules) -> None:
    content = _tool_content(result)
    if content is None or not rules.outputs:
        return
    span.set_data(SPANDATA.MCP_TOOL_RESULT_CONTENT, safe_serialize(content))
    if isinstance(content, dict):
        span.set_data(SPANDATA.MCP_TOOL_RESULT_CONTENT_COUNT, len(content))


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _record_prompt(span: Any, result: Any, rules: _Rules) -> None:
    found = _field(result, "messages") if result is not None else None
    if not found:
        return
    span.set_data(SPANDATA.MCP_PROMPT_RESULT_MESSAGE_COUNT, len(found))
    if len(found) != 1 or not rules.prompt_content:
        return
    message = found[0]
    role = _field(message, "role")
    if role:
        span.set_data(SPANDATA.MCP_PROMPT_RESULT_MESSAGE_ROLE, role)
    content = _field(message, "content")
    text = content if isinstance(content, str) else _field(content, "text")
    if text:
        span.set_data(SPANDATA.MCP_PROMPT_RESULT_MESSAGE_CONTENT, text)


def _record_nothing(span: Any, result: Any, rules: _Rules) -> None:
    pass


# -- mcp 2: a server middleware --------------------------------------------------------


async def _middleware(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    method = getattr(ctx, "method", None)
    params = getattr(ctx, "params", None)
    if method == "tools/call":
        kind, key, record = _TOOL, "name", _record_tool
    elif method == "prompts/get":
        kind, key, record = _PROMPT, "name", _record_prompt
    elif method == "resources/read":
        kind, key, record = _RESOURCE, "uri", _record_nothing
    else:
        return await call_next(ctx)
    if params is None or params.get(key) is None:
        return await call_next(ctx)
    arguments = params.get("arguments") if kind is not _RESOURCE else None
    return await _observe(kind, params[key], arguments or {}, ctx, lambda: call_next(ctx), record)


def _patch_server_v2(module: ModuleType) -> None:
    def wrap_init(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            try:
                self.middleware.append(_middleware)
            except Exception:  # a server without middleware: not instrumented
                pass

        return init

    patch_once(module.Server, "__init__", wrap_init, _MARK)


# -- mcp 1: the handlers registered with the server's decorators -----------------------


def _request_context(module: ModuleType) -> Any:
    try:
        return module.request_ctx.get()
    except (LookupError, AttributeError):
        return None


def _handler(
    module: ModuleType, kind: tuple[str, str], record: Callable[..., None], func: Any
) -> Any:
    @functools.wraps(func)
    async def handler(*args: Any) -> Any:
        async def run() -> Any:
            result = func(*args)
            if hasattr(result, "__await__"):
                result = await result
            return result

        name: Any = args[0] if args else "unknown"
        arguments = args[1] if len(args) > 1 and args[1] is not None else {}
        if kind is _RESOURCE:
            arguments = {}
        return await _observe(kind, name, arguments, _request_context(module), run, record)

    return handler


def _patch_server_v1(module: ModuleType) -> None:
    server = module.Server
    for attribute, kind, record in (
        ("call_tool", _TOOL, _record_tool),
        ("get_prompt", _PROMPT, _record_prompt),
        ("read_resource", _RESOURCE, _record_nothing),
    ):
        if not hasattr(server, attribute):
            continue

        def wrap(
            original: Callable[..., Any],
            kind: tuple[str, str] = kind,
            record: Callable[..., None] = record,
        ) -> Callable[..., Any]:
            @functools.wraps(original)
            def decorator_factory(self: Any, *args: Any, **kwargs: Any) -> Any:
                register = original(self, *args, **kwargs)

                def decorator(func: Any) -> Any:
                    return register(_handler(module, kind, record, func))

                return decorator

            return decorator_factory

        patch_once(server, attribute, wrap, _MARK)


def _patch_fastmcp(module: ModuleType) -> None:
    fast = getattr(module, "FastMCP", None)
    if fast is None:
        return
    server_module = sys.modules.get("mcp.server.lowlevel.server")
    for attribute, kind, record in (
        ("_get_prompt_mcp", _PROMPT, _record_prompt),
        ("_read_resource_mcp", _RESOURCE, _record_nothing),
    ):
        if not hasattr(fast, attribute):
            continue

        def wrap(
            original: Callable[..., Any],
            kind: tuple[str, str] = kind,
            record: Callable[..., None] = record,
        ) -> Callable[..., Any]:
            @functools.wraps(original)
            async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                name = args[0] if args else kwargs.get("name", kwargs.get("uri", "unknown"))
                arguments = args[1] if len(args) > 1 else kwargs.get("arguments")
                ctx = _request_context(server_module) if server_module else None
                return await _observe(
                    kind,
                    name,
                    (arguments or {}) if kind is not _RESOURCE else {},
                    ctx,
                    lambda: original(self, *args, **kwargs),
                    record,
                )

            return method

        patch_once(fast, attribute, wrap, _MARK)


# -- Streamable HTTP: the request's scopes ---------------------------------------------


def _patch_http_transport(module: ModuleType) -> None:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        async def handle_request(self: Any, scope: Any, receive: Any, send: Any) -> None:
            try:
                state = scope.setdefault("state", {})
                state[_ISOLATION_KEY] = get_isolation_scope()
                state[_CURRENT_KEY] = get_current_scope()
            except Exception:  # a scope without room for state: no nesting
                pass
            await original(self, scope, receive, send)

        return handle_request

    patch_once(module.StreamableHTTPServerTransport, "handle_request", wrap, _MARK)


__all__ = ["MCPIntegration"]
