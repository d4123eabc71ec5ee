"""Integrations: the base class, the default set and the registry.

An integration declares an `identifier`; `setup_once()` runs once per process (as
in sentry_sdk) and installs hooks that check, on every call, whether the active
client has that integration enabled. Patches go through `_patch.py` so
`tripwire.testing.reset()` can undo them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Sequence
from itertools import zip_longest
from typing import Any, ClassVar, Optional, Union

from tripwire._log import logger


class DidNotEnable(Exception):
    """Raised by `setup_once` when the integration cannot be enabled (e.g. missing package).

    Swallowed for default and auto-enabling integrations; raised from `init()` for an
    integration the user asked for (as sentry_sdk 2.x).
    """


class Integration:
    """Base class for integrations."""

    identifier: ClassVar[str] = "integration"

    @staticmethod
    def setup_once() -> None:
        """Install process-wide hooks (called once per process)."""

    def setup_once_with_options(self, options: Optional[dict[str, Any]] = None) -> None:
        """Called on the instance right after `setup_once`, with the client's options."""


_DEFAULT_INTEGRATIONS = [
    "tripwire.integrations.argv.ArgvIntegration",
    "tripwire.integrations.atexit.AtexitIntegration",
    "tripwire.integrations.dedupe.DedupeIntegration",
    "tripwire.integrations.excepthook.ExcepthookIntegration",
    "tripwire.integrations.logging.LoggingIntegration",
    "tripwire.integrations.modules.ModulesIntegration",
    "tripwire.integrations.stdlib.StdlibIntegration",
    "tripwire.integrations.threading.ThreadingIntegration",
]

# The frameworks sentry_sdk 2.75 enables when their package is installed (the
# `auto_enabling_integrations` option). A module tripwire does not ship yet is skipped.
_AUTO_ENABLING_INTEGRATIONS = [
    "tripwire.integrations.aiohttp.AioHttpIntegration",
    "tripwire.integrations.anthropic.AnthropicIntegration",
    "tripwire.integrations.ariadne.AriadneIntegration",
    "tripwire.integrations.arq.ArqIntegration",
    "tripwire.integrations.asyncpg.AsyncPGIntegration",
    "tripwire.integrations.boto3.Boto3Integration",
    "tripwire.integrations.bottle.BottleIntegration",
    "tripwire.integrations.celery.CeleryIntegration",
    "tripwire.integrations.chalice.ChaliceIntegration",
    "tripwire.integrations.clickhouse_driver.ClickhouseDriverIntegration",
    "tripwire.integrations.cohere.CohereIntegration",
    "tripwire.integrations.django.DjangoIntegration",
    "tripwire.integrations.falcon.FalconIntegration",
    "tripwire.integrations.fastapi.FastApiIntegration",
    "tripwire.integrations.flask.FlaskIntegration",
    "tripwire.integrations.gql.GQLIntegration",
    "tripwire.integrations.google_genai.GoogleGenAIIntegration",
    "tripwire.integrations.graphene.GrapheneIntegration",
    "tripwire.integrations.httpx.HttpxIntegration",
    "tripwire.integrations.httpx2.Httpx2Integration",
    "tripwire.integrations.huey.HueyIntegration",
    "tripwire.integrations.huggingface_hub.HuggingfaceHubIntegration",
    "tripwire.integrations.langchain.LangchainIntegration",
    "tripwire.integrations.langgraph.LanggraphIntegration",
    "tripwire.integrations.litestar.LitestarIntegration",
    "tripwire.integrations.loguru.LoguruIntegration",
    "tripwire.integrations.mcp.MCPIntegration",
    "tripwire.integrations.openai.OpenAIIntegration",
    "tripwire.integrations.openai_agents.OpenAIAgentsIntegration",
    "tripwire.integrations.pydantic_ai.PydanticAIIntegration",
    "tripwire.integrations.pymongo.PyMongoIntegration",
    "tripwire.integrations.pyramid.PyramidIntegration",
    "tripwire.integrations.quart.QuartIntegration",
    "tripwire.integrations.redis.RedisIntegration",
    "tripwire.integrations.rq.RqIntegration",
    "tripwire.integrations.sanic.SanicIntegration",
    "tripwire.integrations.sqlalchemy.SqlalchemyIntegration",
    "tripwire.integrations.starlette.StarletteIntegration",
    "tripwire.integrations.starlite.StarliteIntegration",
    "tripwire.integrations.strawberry.StrawberryIntegration",
    "tripwire.integrations.tornado.TornadoIntegration",
]

# Minimum package versions per integration identifier (sentry_sdk 2.75's table).
_MIN_VERSIONS: dict[str, tuple[int, ...]] = {
    "aiohttp": (3, 4),
    "aiomysql": (0, 3, 0),
    "anthropic": (0, 16),
    "ariadne": (0, 20),
    "arq": (0, 23),
    "asyncpg": (0, 23),
    "beam": (2, 12),
    "boto3": (1, 16),
    "bottle": (0, 12),
    "celery": (4, 4, 7),
    "chalice": (1, 16, 0),
    "clickhouse_driver": (0, 2, 0),
    "cohere": (5, 4, 0),
    "django": (1, 8),
    "dramatiq": (1, 9),
    "falcon": (1, 4),
    "fastapi": (0, 79, 0),
    "flask": (1, 1, 4),
    "google_genai": (1, 29, 0),
    "gql": (3, 4, 1),
    "graphene": (3, 3),
    "grpc": (1, 32, 0),
    "httpx": (0, 16, 0),
    "httpx2": (2, 0, 0),
    "huggingface_hub": (0, 24, 7),
    "langchain": (0, 1, 0),
    "langgraph": (0, 6, 6),
    "launchdarkly": (9, 8, 0),
    "litellm": (1, 77, 5),
    "loguru": (0, 7, 0),
    "mcp": (1, 15, 0),
    "mistral": (2, 0, 5),
    "openai": (1, 0, 0),
    "openai_agents": (0, 0, 19),
    "openfeature": (0, 7, 1),
    "pydantic_ai": (1, 0, 0),
    "pymongo": (3, 5, 0),
    "pyreqwest": (0, 11, 6),
    "quart": (0, 16, 0),
    "ray": (2, 7, 0),
    "requests": (2, 0, 0),
    "rq": (0, 6),
    "sanic": (0, 8),
    "sqlalchemy": (1, 2),
    "starlette": (0, 16),
    "starlite": (1, 48),
    "statsig": (0, 55, 3),
    "strawberry": (0, 209, 5),
    "tornado": (6, 0),
    "typer": (0, 15),
    "typesafe": (0, 7),
    "unleash": (6, 0, 1),
}

# An active integration of the key turns off these (default) integrations, which would
# otherwise report the same calls twice, unless the user listed them explicitly.
_INTEGRATION_DEACTIVATES: dict[str, set[str]] = {
    "langchain": {"anthropic", "google_genai", "openai"},
    "openai_agents": {"openai"},
    "pydantic_ai": {"anthropic", "openai"},
}

_DEFAULT_FAILED_REQUEST_STATUS_CODES = frozenset(range(500, 600))

_installer_lock = threading.Lock()
# Identifiers whose setup was attempted in this process, and those whose setup succeeded.
_processed_integrations: set[str] = set()
_installed_integrations: set[str] = set()
# Integration paths whose module tripwire does not have.
_not_shipped: set[str] = set()


def _is_missing_module(exc: ModuleNotFoundError, module_name: str) -> bool:
    """Whether `exc` says that `module_name` itself (or a parent package) does not exist."""
    missing = exc.name or ""
    return module_name == missing or module_name.startswith(missing + ".")


def iter_default_integrations(with_auto_enabling_integrations: bool) -> Iterator[type[Integration]]:
    """The default integration classes, then (if asked) the auto-enabling ones.

    Integrations that raise `DidNotEnable` on import (their framework is not installed)
    and those tripwire does not ship (yet) are skipped.
    """
    paths = _DEFAULT_INTEGRATIONS
    if with_auto_enabling_integrations:
        paths = paths + _AUTO_ENABLING_INTEGRATIONS
    for path in paths:
        if path in _not_shipped:
            continue
        module_name, _, cls_name = path.rpartition(".")
        try:
            yield getattr(importlib.import_module(module_name), cls_name)
        except (DidNotEnable, SyntaxError) as exc:
            logger.debug("Did not import default integration %s: %s", path, exc)
        except ModuleNotFoundError as exc:
            if not _is_missing_module(exc, module_name):
                raise
            # Remembered: looking for a missing module again costs a search of sys.path.
            _not_shipped.add(path)
            logger.debug("Integration %s is not part of tripwire", path)


def _classes(items: Optional[Sequence[Any]]) -> list[type[Integration]]:
    return [item if isinstance(item, type) else type(item) for item in items or ()]


def setup_integrations(
    integrations: Any,
    with_defaults: bool = True,
    with_auto_enabling_integrations: bool = False,
    disabled_integrations: Optional[Sequence[Union[type[Integration], Integration]]] = None,
    options: Optional[dict[str, Any]] = None,
) -> dict[str, Integration]:
    """Set up the given integration instances (plus the defaults) and return the enabled ones.

    As sentry_sdk 2.x: `setup_once` runs at most once per identifier per process; a
    `DidNotEnable` from an integration the caller listed is raised, from a default one
    it is logged; `disabled_integrations` wins over everything else. Returns
    ``{identifier: instance}`` for the integrations that are installed.

    Args:
        integrations: Integration instances (classes are accepted and instantiated).
        with_defaults: Add `_DEFAULT_INTEGRATIONS` not already given.
        with_auto_enabling_integrations: Also add `_AUTO_ENABLING_INTEGRATIONS`.
        disabled_integrations: Integrations (classes or instances) never set up.
        options: The client's options, passed to `setup_once_with_options`.

    Raises:
        DidNotEnable: A listed integration cannot be enabled.
    """
    logger.debug("Setting up integrations (with default = %s)", with_defaults)
    chosen: dict[str, Integration] = {}
    for item in integrations or ():
        instance = item() if isinstance(item, type) else item
        chosen[instance.identifier] = instance
    user_provided = set(chosen)
    disabled = _classes(disabled_integrations)
    as_default: set[str] = set()
    if with_defaults:
        for cls in iter_default_integrations(with_auto_enabling_integrations):
            if cls.identifier not in chosen:
                chosen[cls.identifier] = cls()
                as_default.add(cls.identifier)
    disabled_ids = {cls.identifier for cls in disabled}
    for identifier, targets in _INTEGRATION_DEACTIVATES.items():
        if identifier not in chosen or identifier in disabled_ids:
            continue
        for target in targets - user_provided:
            for cls in iter_default_integrations(True):
                if cls.identifier == target and cls not in disabled:
                    logger.debug("Deactivating %s: %s is active", target, identifier)
                    disabled.append(cls)
    for identifier, instance in chosen.items():
        with _installer_lock:
            if identifier in _processed_integrations:
                continue
            if type(instance) in disabled:
                logger.debug("Ignoring integration %s", identifier)
            else:
                logger.debug("Setting up previously not enabled integration %s", identifier)
                try:
                    type(instance).setup_once()
                    instance.setup_once_with_options(options)
                except DidNotEnable as exc:
                    if identifier not in as_default:
                        raise
                    logger.debug("Did not enable default integration %s: %s", identifier, exc)
                else:
                    _installed_integrations.add(identifier)
            _processed_integrations.add(identifier)
    # sentry_sdk 2.75 still returns an integration disabled by a later client if an earlier
    # one installed it; tripwire leaves it out, so the hooks stay quiet for that client.
    enabled = {
        key: value
        for key, value in chosen.items()
        if key in _installed_integrations and type(value) not in disabled
    }
    for identifier in enabled:
        logger.debug("Enabling integration %s", identifier)
    return enabled


def _setup_for_options(options: dict[str, Any]) -> dict[str, Integration]:
    """The integrations a client with these options gets (what `init()` sets up)."""
    return setup_integrations(
        options.get("integrations") or (),
        with_defaults=bool(options.get("default_integrations", True)),
        with_auto_enabling_integrations=bool(options.get("auto_enabling_integrations", False)),
        disabled_integrations=options.get("disabled_integrations"),
        options=options,
    )


def _check_minimum_version(
    integration: type[Integration],
    version: Optional[tuple[int, ...]],
    package: Optional[str] = None,
) -> None:
    """Raise `DidNotEnable` if `version` of the integration's package is too old or unknown.

    Args:
        integration: The integration class; its identifier selects the minimum version.
        version: The installed version (e.g. from `tripwire.utils.package_version`).
        package: The package name for the message (default: the identifier).
    """
    name = package or integration.identifier
    if version is None:
        raise DidNotEnable(f"Unparsable {name} version.")
    minimum = _MIN_VERSIONS.get(integration.identifier)
    if minimum is None:
        return
    for have, need in zip_longest(version, minimum, fillvalue=0):
        if have > need:
            return
        if have < need:
            wanted = ".".join(str(part) for part in minimum)
            raise DidNotEnable(f"Integration only supports {name} {wanted} or newer.")


def reset_integrations() -> None:
    """Undo all patches and forget what was set up (used by `tripwire.testing.reset`)."""
    from tripwire.integrations._patch import undo_all
    from tripwire.scope._global_processors import global_event_processors

    undo_all()
    global_event_processors.clear()
    with _installer_lock:
        _processed_integrations.clear()
        _installed_integrations.clear()


__all__ = ["DidNotEnable", "Integration", "iter_default_integrations", "setup_integrations"]
