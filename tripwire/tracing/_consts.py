"""Tracing constants: transaction sources, span statuses, span data keys and ops.

The string values are the protocol's (Sentry and OpenTelemetry semantic conventions), so
code written against sentry_sdk's names keeps producing the same payloads.
"""

from __future__ import annotations

import enum

SENTRY_TRACE_HEADER_NAME = "sentry-trace"
BAGGAGE_HEADER_NAME = "baggage"
W3C_TRACEPARENT_HEADER_NAME = "traceparent"

# Child spans kept per transaction; the rest are counted as dropped (as sentry_sdk 2.x).
MAX_SPANS = 1000

UNLABELED_TRANSACTION = "<unlabeled transaction>"


class TransactionSource(str, enum.Enum):
    """How a transaction got its name; Sentry groups low-quality sources differently."""

    COMPONENT = "component"
    CUSTOM = "custom"
    ROUTE = "route"
    TASK = "task"
    URL = "url"
    VIEW = "view"

    def __str__(self) -> str:
        return str(self.value)


# Sources whose names are too high-cardinality to go into the dynamic sampling context.
LOW_QUALITY_TRANSACTION_SOURCES = [TransactionSource.URL]

# Framework integrations' `transaction_style` values and the source each implies.
SOURCE_FOR_STYLE = {
    "endpoint": TransactionSource.COMPONENT,
    "function_name": TransactionSource.COMPONENT,
    "handler_name": TransactionSource.COMPONENT,
    "method_and_path_pattern": TransactionSource.ROUTE,
    "path": TransactionSource.URL,
    "route_name": TransactionSource.COMPONENT,
    "route_pattern": TransactionSource.ROUTE,
    "uri_template": TransactionSource.ROUTE,
    "url": TransactionSource.ROUTE,
}


class INSTRUMENTER:
    """Which instrumentation creates spans."""

    SENTRY = "sentry"
    OTEL = "otel"


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


class SPANTEMPLATE(str, enum.Enum):
    """Span templates accepted by `@trace(template=...)`."""

    DEFAULT = "default"
    AI_AGENT = "ai_agent"
    AI_TOOL = "ai_tool"
    AI_CHAT = "ai_chat"

    def __str__(self) -> str:
        return str(self.value)


class SPANDATA:
    """Well-known keys of span data (semantic conventions)."""

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
    HTTP_FRAGMENT = "http.fragment"
    HTTP_METHOD = "http.method"
    HTTP_QUERY = "http.query"
    HTTP_REQUEST_BODY_DATA = "http.request.body.data"
    HTTP_REQUEST_HEADER = "http.request.header"
    HTTP_REQUEST_METHOD = "http.request.method"
    HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"
    HTTP_ROUTE = "http.route"
    HTTP_STATUS_CODE = "http.response.status_code"
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


class OP:
    """Well-known span operations."""

    CACHE_GET = "cache.get"
    CACHE_PUT = "cache.put"
    DB = "db"
    DB_CURSOR_FETCH = "db.cursor.fetch"
    DB_CURSOR_ITERATOR = "db.cursor.iter"
    DB_REDIS = "db.redis"
    EVENT_DJANGO = "event.django"
    FUNCTION = "function"
    FUNCTION_AWS = "function.aws"
    FUNCTION_GCP = "function.gcp"
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
    MIDDLEWARE_DJANGO = "middleware.django"
    MIDDLEWARE_LITESTAR = "middleware.litestar"
    MIDDLEWARE_LITESTAR_RECEIVE = "middleware.litestar.receive"
    MIDDLEWARE_LITESTAR_SEND = "middleware.litestar.send"
    MIDDLEWARE_STARLETTE = "middleware.starlette"
    MIDDLEWARE_STARLETTE_RECEIVE = "middleware.starlette.receive"
    MIDDLEWARE_STARLETTE_SEND = "middleware.starlette.send"
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


# HTTP 4xx codes with a status of their own; other 4xx are "invalid_argument".
_HTTP_4XX = {
    401: SPANSTATUS.UNAUTHENTICATED,
    403: SPANSTATUS.PERMISSION_DENIED,
    404: SPANSTATUS.NOT_FOUND,
    409: SPANSTATUS.ALREADY_EXISTS,
    413: SPANSTATUS.FAILED_PRECONDITION,
    429: SPANSTATUS.RESOURCE_EXHAUSTED,
}
# HTTP 5xx codes with a status of their own; other 5xx are "internal_error".
_HTTP_5XX = {
    501: SPANSTATUS.UNIMPLEMENTED,
    503: SPANSTATUS.UNAVAILABLE,
    504: SPANSTATUS.DEADLINE_EXCEEDED,
}


def get_span_status_from_http_code(http_status_code: int) -> str:
    """The span status for an HTTP status code (as sentry_sdk 2.x maps them).

    Args:
        http_status_code: The response's status code.

    Returns:
        One of the `SPANSTATUS` values.
    """
    if http_status_code < 400:
        return SPANSTATUS.OK
    if http_status_code < 500:
        return _HTTP_4XX.get(http_status_code, SPANSTATUS.INVALID_ARGUMENT)
    if http_status_code < 600:
        return _HTTP_5XX.get(http_status_code, SPANSTATUS.INTERNAL_ERROR)
    return SPANSTATUS.UNKNOWN_ERROR
