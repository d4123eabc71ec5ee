"""Version, SDK identity, default limits and the protocol's well-known names.

The span ops, span data keys and statuses carry the same string values as sentry_sdk 2.75's
`sentry_sdk.consts`, so code written against those names produces the same payloads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tripwire._enums import SPANTEMPLATE as SPANTEMPLATE
    from tripwire._enums import CompressionAlgo as CompressionAlgo
    from tripwire._enums import EndpointType as EndpointType
    from tripwire.options import DEFAULT_OPTIONS as DEFAULT_OPTIONS

VERSION = "0.1.0"
SDK_NAME = "tripwire.python"
USER_AGENT = f"{SDK_NAME}/{VERSION}"

DEFAULT_MAX_BREADCRUMBS = 100
# sentry_sdk 2.75 has None here (never trim); tripwire bounds strings by default.
DEFAULT_MAX_VALUE_LENGTH = 100_000
DEFAULT_MAX_STACK_FRAMES = 100
DEFAULT_ADD_FULL_STACK = False
DEFAULT_QUEUE_SIZE = 100
DEFAULT_SHUTDOWN_TIMEOUT = 2.0

# Bounds on user data copied into an event ("databags": extra, vars, request data).
MAX_DATABAG_DEPTH = 5
MAX_DATABAG_BREADTH = 10

# The default of `trace_propagation_targets`: every URL.
MATCH_ALL = r".*"

# Spellings of "off" accepted by environment variables such as SENTRY_TRACES_SAMPLE_RATE.
FALSE_VALUES = ["false", "no", "off", "n", "0"]


class INSTRUMENTER:
    """Which instrumentation creates spans (the `instrumenter` option)."""

    OTEL = "otel"
    SENTRY = "sentry"


class SPANNAME:
    """Span names with a fixed spelling."""

    DB_COMMIT = "COMMIT"
    DB_ROLLBACK = "ROLLBACK"


class SPANSTATUS:
    """Span statuses (the protocol's, modelled on gRPC codes)."""

    ABORTED = "aborted"
    ALREADY_EXISTS = "already_exists"
    CANCELLED = "cancelled"
    DATA_LOSS = "data_loss"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    FAILED_PRECONDITION = "failed_precondition"
    INTERNAL_ERROR = "internal_error"
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    OK = "ok"
    OUT_OF_RANGE = "out_of_range"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAUTHENTICATED = "unauthenticated"
    UNAVAILABLE = "unavailable"
    UNIMPLEMENTED = "unimplemented"
    UNKNOWN_ERROR = "unknown_error"


class OP:
    """Well-known span operations."""

    ANTHROPIC_MESSAGES_CREATE = "ai.messages.create.anthropic"
    CACHE_GET = "cache.get"
    CACHE_PUT = "cache.put"
    COHERE_CHAT_COMPLETIONS_CREATE = "ai.chat_completions.create.cohere"
    COHERE_EMBEDDINGS_CREATE = "ai.embeddings.create.cohere"
    DB = "db"
    DB_CURSOR_FETCH = "db.cursor.fetch"
    DB_CURSOR_ITERATOR = "db.cursor.iter"
    DB_REDIS = "db.redis"
    EVENT_DJANGO = "event.django"
    FUNCTION = "function"
    FUNCTION_AWS = "function.aws"
    FUNCTION_GCP = "function.gcp"
    GEN_AI_CHAT = "gen_ai.chat"
    GEN_AI_CREATE_AGENT = "gen_ai.create_agent"
    GEN_AI_EMBEDDINGS = "gen_ai.embeddings"
    GEN_AI_EVALUATE = "gen_ai.evaluate"
    GEN_AI_EXECUTE_TOOL = "gen_ai.execute_tool"
    GEN_AI_HANDOFF = "gen_ai.handoff"
    GEN_AI_INVOKE_AGENT = "gen_ai.invoke_agent"
    GEN_AI_RESPONSES = "gen_ai.responses"
    GEN_AI_TEXT_COMPLETION = "gen_ai.text_completion"
    GRAPHQL_EXECUTE = "graphql.execute"
    GRAPHQL_MUTATION = "graphql.mutation"
    GRAPHQL_PARSE = "graphql.parse"
    GRAPHQL_QUERY = "graphql.query"
    GRAPHQL_RESOLVE = "graphql.resolve"
    GRAPHQL_SUBSCRIPTION = "graphql.subscription"
    GRAPHQL_VALIDATE = "graphql.validate"
    GRPC_CLIENT = "grpc.client"
    GRPC_SERVER = "grpc.server"
    HTTP_CLIENT = "http.client"
    HTTP_CLIENT_STREAM = "http.client.stream"
    HTTP_SERVER = "http.server"
    HUGGINGFACE_HUB_CHAT_COMPLETIONS_CREATE = "ai.chat_completions.create.huggingface_hub"
    MCP_SERVER = "mcp.server"
    MIDDLEWARE_DJANGO = "middleware.django"
    MIDDLEWARE_LITESTAR = "middleware.litestar"
    MIDDLEWARE_LITESTAR_RECEIVE = "middleware.litestar.receive"
    MIDDLEWARE_LITESTAR_SEND = "middleware.litestar.send"
    MIDDLEWARE_STARLETTE = "middleware.starlette"
    MIDDLEWARE_STARLETTE_RECEIVE = "middleware.starlette.receive"
    MIDDLEWARE_STARLETTE_SEND = "middleware.starlette.send"
    MIDDLEWARE_STARLITE = "middleware.starlite"
    MIDDLEWARE_STARLITE_RECEIVE = "middleware.starlite.receive"
    MIDDLEWARE_STARLITE_SEND = "middleware.starlite.send"
    QUEUE_PROCESS = "queue.process"
    QUEUE_PUBLISH = "queue.publish"
    QUEUE_SUBMIT_ARQ = "queue.submit.arq"
    QUEUE_SUBMIT_CELERY = "queue.submit.celery"
    QUEUE_SUBMIT_DJANGO = "queue.submit.django"
    QUEUE_SUBMIT_HUEY = "queue.submit.huey"
    QUEUE_SUBMIT_RAY = "queue.submit.ray"
    QUEUE_TASK_ARQ = "queue.task.arq"
    QUEUE_TASK_CELERY = "queue.task.celery"
    QUEUE_TASK_DRAMATIQ = "queue.task.dramatiq"
    QUEUE_TASK_HUEY = "queue.task.huey"
    QUEUE_TASK_RAY = "queue.task.ray"
    QUEUE_TASK_RQ = "queue.task.rq"
    SOCKET_CONNECTION = "socket.connection"
    SOCKET_DNS = "socket.dns"
    SUBPROCESS = "subprocess"
    SUBPROCESS_COMMUNICATE = "subprocess.communicate"
    SUBPROCESS_WAIT = "subprocess.wait"
    TEMPLATE_RENDER = "template.render"
    VIEW_AUTHENTICATE = "view.authenticate"
    VIEW_RENDER = "view.render"
    VIEW_RESPONSE_RENDER = "view.response.render"
    WEBSOCKET_SERVER = "websocket.server"


class SPANDATA:
    """Well-known keys of span data (Sentry and OpenTelemetry semantic conventions)."""

    AI_CITATIONS = "ai.citations"
    AI_DOCUMENTS = "ai.documents"
    AI_FINISH_REASON = "ai.finish_reason"
    AI_FREQUENCY_PENALTY = "ai.frequency_penalty"
    AI_FUNCTION_CALL = "ai.function_call"
    AI_GENERATION_ID = "ai.generation_id"
    AI_INPUT_MESSAGES = "ai.input_messages"
    AI_LOGIT_BIAS = "ai.logit_bias"
    AI_METADATA = "ai.metadata"
    AI_MODEL_ID = "ai.model_id"
    AI_PIPELINE_NAME = "ai.pipeline.name"
    AI_PREAMBLE = "ai.preamble"
    AI_PRESENCE_PENALTY = "ai.presence_penalty"
    AI_RAW_PROMPTING = "ai.raw_prompting"
    AI_RESPONSES = "ai.responses"
    AI_RESPONSE_FORMAT = "ai.response_format"
    AI_SEARCH_QUERIES = "ai.search_queries"
    AI_SEARCH_REQUIRED = "ai.is_search_required"
    AI_SEARCH_RESULTS = "ai.search_results"
    AI_SEED = "ai.seed"
    AI_STREAMING = "ai.streaming"
    AI_TAGS = "ai.tags"
    AI_TEMPERATURE = "ai.temperature"
    AI_TEXTS = "ai.texts"
    AI_TOOLS = "ai.tools"
    AI_TOOL_CALLS = "ai.tool_calls"
    AI_TOP_K = "ai.top_k"
    AI_TOP_P = "ai.top_p"
    AI_WARNINGS = "ai.warnings"
    AWS_EXTENDED_REQUEST_ID = "aws.extended_request_id"
    AWS_REQUEST_ID = "aws.request_id"
    CACHE_HIT = "cache.hit"
    CACHE_ITEM_SIZE = "cache.item_size"
    CACHE_KEY = "cache.key"
    CLIENT_ADDRESS = "client.address"
    CLOUD_REGION = "cloud.region"
    CODE_FILEPATH = "code.filepath"
    CODE_FILE_PATH = "code.file.path"
    CODE_FUNCTION = "code.function"
    CODE_FUNCTION_NAME = "code.function.name"
    CODE_LINENO = "code.lineno"
    CODE_LINE_NUMBER = "code.line.number"
    CODE_NAMESPACE = "code.namespace"
    DB_DRIVER_NAME = "db.driver.name"
    DB_MONGODB_COLLECTION = "db.mongodb.collection"
    DB_NAME = "db.name"
    DB_NAMESPACE = "db.namespace"
    DB_OPERATION = "db.operation"
    DB_OPERATION_NAME = "db.operation.name"
    DB_QUERY_TEXT = "db.query.text"
    DB_SYSTEM = "db.system"
    DB_SYSTEM_NAME = "db.system.name"
    DB_USER = "db.user"
    ERROR_TYPE = "error.type"
    GEN_AI_AGENT_NAME = "gen_ai.agent.name"
    GEN_AI_CHOICE = "gen_ai.choice"
    GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
    GEN_AI_EMBEDDINGS_INPUT = "gen_ai.embeddings.input"
    GEN_AI_FUNCTION_ID = "gen_ai.function_id"
    GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
    GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
    GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
    GEN_AI_PIPELINE_NAME = "gen_ai.pipeline.name"
    GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
    GEN_AI_REQUEST_AVAILABLE_TOOLS = "gen_ai.request.available_tools"
    GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
    GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
    GEN_AI_REQUEST_MESSAGES = "gen_ai.request.messages"
    GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
    GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
    GEN_AI_REQUEST_REASONING_LEVEL = "gen_ai.request.reasoning.level"
    GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
    GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
    GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
    GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
    GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
    GEN_AI_RESPONSE_ID = "gen_ai.response.id"
    GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
    GEN_AI_RESPONSE_STREAMING = "gen_ai.response.streaming"
    GEN_AI_RESPONSE_TEXT = "gen_ai.response.text"
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
    GEN_AI_RESPONSE_TIME_TO_FIRST_TOKEN = "gen_ai.response.time_to_first_token"  # noqa: S105 - a data key
    GEN_AI_RESPONSE_TOOL_CALLS = "gen_ai.response.tool_calls"
    GEN_AI_SYSTEM = "gen_ai.system"
    GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
    GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
    GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
    GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"
    GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
    GEN_AI_TOOL_INPUT = "gen_ai.tool.input"
    GEN_AI_TOOL_NAME = "gen_ai.tool.name"
    GEN_AI_TOOL_OUTPUT = "gen_ai.tool.output"
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
    GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
    GEN_AI_USAGE_INPUT_TOKENS_CACHED = "gen_ai.usage.input_tokens.cached"
    GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE = "gen_ai.usage.input_tokens.cache_write"
    GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
    GEN_AI_USAGE_OUTPUT_TOKENS_REASONING = "gen_ai.usage.output_tokens.reasoning"
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
    GEN_AI_USAGE_TOTAL_TOKENS = "gen_ai.usage.total_tokens"
    GEN_AI_USER_MESSAGE = "gen_ai.user.message"
    HTTP_FRAGMENT = "http.fragment"
    HTTP_METHOD = "http.method"
    HTTP_QUERY = "http.query"
    HTTP_REQUEST_BODY_DATA = "http.request.body.data"
    HTTP_REQUEST_HEADER = "http.request.header"
    HTTP_REQUEST_METHOD = "http.request.method"
    HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"
    HTTP_ROUTE = "http.route"
    HTTP_STATUS_CODE = "http.response.status_code"
    MCP_METHOD_NAME = "mcp.method.name"
    MCP_PROMPT_NAME = "mcp.prompt.name"
    MCP_PROMPT_RESULT_MESSAGE_CONTENT = "mcp.prompt.result.message_content"
    MCP_PROMPT_RESULT_MESSAGE_COUNT = "mcp.prompt.result.message_count"
    MCP_PROMPT_RESULT_MESSAGE_ROLE = "mcp.prompt.result.message_role"
    MCP_REQUEST_ID = "mcp.request.id"
    MCP_RESOURCE_PROTOCOL = "mcp.resource.protocol"
    MCP_RESOURCE_URI = "mcp.resource.uri"
    MCP_SESSION_ID = "mcp.session.id"
    MCP_TOOL_NAME = "mcp.tool.name"
    MCP_TOOL_RESULT_CONTENT = "mcp.tool.result.content"
    MCP_TOOL_RESULT_CONTENT_COUNT = "mcp.tool.result.content_count"
    MCP_TOOL_RESULT_IS_ERROR = "mcp.tool.result.is_error"
    MCP_TRANSPORT = "mcp.transport"
    MESSAGING_DESTINATION_NAME = "messaging.destination.name"
    MESSAGING_MESSAGE_ID = "messaging.message.id"
    MESSAGING_MESSAGE_RECEIVE_LATENCY = "messaging.message.receive.latency"
    MESSAGING_MESSAGE_RETRY_COUNT = "messaging.message.retry.count"
    MESSAGING_SYSTEM = "messaging.system"
    MIDDLEWARE_NAME = "middleware.name"
    NETWORK_PEER_ADDRESS = "network.peer.address"
    NETWORK_PEER_PORT = "network.peer.port"
    NETWORK_PROTOCOL_NAME = "network.protocol.name"
    NETWORK_TRANSPORT = "network.transport"
    PROCESS_COMMAND_ARGS = "process.command_args"
    PROCESS_PID = "process.pid"
    PROFILER_ID = "profiler_id"
    RPC_METHOD = "rpc.method"
    RPC_RESPONSE_STATUS_CODE = "rpc.response.status_code"
    RPC_SERVICE = "rpc.service"
    RPC_SYSTEM_NAME = "rpc.system.name"
    SENTRY_DIST = "sentry.dist"
    SENTRY_ENVIRONMENT = "sentry.environment"
    SENTRY_IS_LOCALHOST = "sentry.is_localhost"
    SENTRY_KIND = "sentry.kind"
    SENTRY_OP = "sentry.op"
    SENTRY_ORIGIN = "sentry.origin"
    SENTRY_PLATFORM = "sentry.platform"
    SENTRY_RELEASE = "sentry.release"
    SENTRY_SDK_INTEGRATIONS = "sentry.sdk.integrations"
    SENTRY_SDK_NAME = "sentry.sdk.name"
    SENTRY_SDK_VERSION = "sentry.sdk.version"
    SERVER_ADDRESS = "server.address"
    SERVER_PORT = "server.port"
    SERVER_SOCKET_ADDRESS = "server.socket.address"
    SERVER_SOCKET_PORT = "server.socket.port"
    THREAD_ID = "thread.id"
    THREAD_NAME = "thread.name"
    URL_FRAGMENT = "url.fragment"
    URL_FULL = "url.full"
    URL_PATH = "url.path"
    URL_QUERY = "url.query"
    USER_AGENT_ORIGINAL = "user_agent.original"
    USER_EMAIL = "user.email"
    USER_ID = "user.id"
    USER_IP_ADDRESS = "user.ip_address"
    USER_NAME = "user.name"


_LAZY = {
    # Enum classes cost more to build than the rest of this module: built on first use.
    "CompressionAlgo": "tripwire._enums",
    "EndpointType": "tripwire._enums",
    "SPANTEMPLATE": "tripwire._enums",
    # Lives with the option checkers, which import this module.
    "DEFAULT_OPTIONS": "tripwire.options",
}


def __getattr__(name: str) -> Any:
    source = _LAZY.get(name)
    if source is not None:
        value = getattr(importlib.import_module(source), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
