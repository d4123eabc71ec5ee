"""TypeSafe AI integration: ``gen_ai.evaluate`` spans for System One calls.

As sentry_sdk 2.75's ``typesafe`` integration, every `TypeSafeClient.system_one` and
`AsyncTypeSafeClient.system_one` call (typesafe-sdk) runs in a span (a transaction
when none is active) with op ``gen_ai.evaluate``, name ``evaluate <model>`` and
origin ``auto.ai.typesafe``, carrying:

- ``gen_ai.provider.name`` ``typesafe``, ``gen_ai.operation.name`` ``evaluate``,
  ``gen_ai.request.model`` (the call's ``model``, else the client's default);
- ``gen_ai.input.messages``: a JSON list with one ``evaluation`` message (the state
  and the questions: type, instructions, criteria) when inputs may be sent;
- from the response: ``gen_ai.response.model``, the input and output token counts,
  and ``gen_ai.output.messages`` (the answers, by question name) when outputs may be
  sent.

Inputs and outputs follow `data_collection`'s ``gen_ai`` switches, or, without it,
``send_default_pii``. An error from the call ends the span ``internal_error`` and
reaches the caller unchanged (no event, as in sentry_sdk).

The clients are patched when typesafe_sdk is imported (at once if it is); set-up
raises `DidNotEnable` if typesafe-sdk is missing or older than 0.7.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import segment_start
from tripwire.scope._current import get_client
from tripwire.utils import has_data_collection_enabled

ORIGIN = "auto.ai.typesafe"
_MARK = "__tripwire_typesafe__"

# typesafe_sdk's question, answer and response classes, once it is imported.
_types: dict[str, Any] = {}


class TypeSafeIntegration(Integration):
    """``gen_ai.evaluate`` spans for TypeSafe AI's System One."""

    identifier = "typesafe"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch both clients' `system_one` once typesafe_sdk is imported.

        Raises:
            DidNotEnable: typesafe-sdk is not installed, or older than 0.7.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("typesafe_sdk") is None:
            raise DidNotEnable("typesafe-sdk not installed")
        _check_minimum_version(TypeSafeIntegration, package_version("typesafe-sdk"), "typesafe-sdk")
        when_imported("typesafe_sdk", _patch_typesafe)


def _patch_typesafe(module: ModuleType) -> None:
    from typesafe_sdk._core.client.aio.client import AsyncTypeSafeClient
    from typesafe_sdk._core.client.sync.client import TypeSafeClient
    from typesafe_sdk._core.response_types import SystemOneResponse

    from tripwire.integrations._patch import patch_once

    for name in ("Noul", "Choice", "Score", "NoulAnswer", "ChoiceAnswer", "ScoreAnswer", "Image"):
        _types[name] = getattr(module, name, None)
    _types["SystemOneResponse"] = SystemOneResponse
    patch_once(TypeSafeClient, "system_one", _wrap_system_one, _MARK)
    patch_once(AsyncTypeSafeClient, "system_one", _wrap_async_system_one, _MARK)


# -- the span ----------------------------------------------------------------------------


class _Call:
    """One `system_one` call: its span, and what may be recorded on it."""

    def __init__(self, client: Any, sdk_client: Any, args: Any, kwargs: dict[str, Any]) -> None:
        from tripwire.ai.utils import sdk_start_span_function

        options = client.options
        model = kwargs.get("model")
        if model is None:
            model = getattr(getattr(sdk_client, "_config", None), "default_model", None)
        self.inputs = _allowed(client, options, "inputs")
        self.outputs = _allowed(client, options, "outputs")
        given = {
            SPANDATA.GEN_AI_PROVIDER_NAME: "typesafe",
            SPANDATA.GEN_AI_OPERATION_NAME: "evaluate",
        }
        # Under streaming the span starts with them, as sentry_sdk's (`traces_sampler`
        # and `ignore_spans` see them).
        self.span = sdk_start_span_function()(
            op=OP.GEN_AI_EVALUATE,
            name=f"evaluate {model}".strip(),
            origin=ORIGIN,
            **segment_start(given, options),
        )
        for key, value in given.items():
            self.span.set_data(key, value)
        if model is not None:
            self.span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
        if self.inputs:
            self.span.set_data(SPANDATA.GEN_AI_INPUT_MESSAGES, _input_messages(args, kwargs))

    def answered(self, response: Any) -> None:
        try:
            if not isinstance(response, _types["SystemOneResponse"]):
                return
            span = self.span
            span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, response.model)
            usage = response.usage
            if usage.input_tokens is not None:
                span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
            if usage.output_tokens is not None:
                span.set_data(SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
            if self.outputs:
                message = {"type": "evaluation", "answers": _answers(response.answers)}
                span.set_data(SPANDATA.GEN_AI_OUTPUT_MESSAGES, _dumps([message]))
        except Exception:  # the response reaches the caller regardless
            pass


def _allowed(client: Any, options: dict[str, Any], which: str) -> bool:
    if has_data_collection_enabled(options):
        return bool(options["data_collection"]["gen_ai"][which])
    return bool(client.should_send_default_pii())


def _begin(sdk_client: Any, args: Any, kwargs: dict[str, Any]) -> Optional[_Call]:
    client = get_client()
    if client.get_integration(TypeSafeIntegration) is None:
        return None
    try:
        call = _Call(client, sdk_client, args, kwargs)
        call.span.__enter__()
        return call
    except Exception:  # instrumentation must never break the call
        return None


def _wrap_system_one(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def system_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _begin(self, args, kwargs)
        if call is None:
            return original(self, *args, **kwargs)
        try:
            response = original(self, *args, **kwargs)
            call.answered(response)
        except BaseException as exc:
            call.span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        call.span.__exit__(None, None, None)
        return response

    return system_one


def _wrap_async_system_one(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def system_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _begin(self, args, kwargs)
        if call is None:
            return await original(self, *args, **kwargs)
        try:
            response = await original(self, *args, **kwargs)
            call.answered(response)
        except BaseException as exc:
            call.span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        call.span.__exit__(None, None, None)
        return response

    return system_one


# -- the messages ------------------------------------------------------------------------


def _json_default(value: object) -> str:
    # An inline image is written as its reference, as typesafe_sdk does.
    image = _types.get("Image")
    if image is not None and isinstance(value, image):
        return str(value)
    return "<unserializable>"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _input_messages(args: Any, kwargs: dict[str, Any]) -> str:
    message: dict[str, Any] = {"type": "evaluation"}
    state = args[0] if len(args) > 0 else kwargs.get("state")
    if state is not None:
        message["state"] = state
    questions = args[1] if len(args) > 1 else kwargs.get("questions")
    if isinstance(questions, Mapping):
        message["questions"] = _questions(questions)
    return _dumps([message])


# Question type -> its fields besides "type" (a Noul's criteria are not sent).
_QUESTION_FIELDS = {"noul": (), "choice": ("criteria",), "score": ("criteria",)}


def _questions(questions: Mapping[str, Any]) -> dict[str, Any]:
    """Each question as ``{"type", "criteria"?, "instructions"?}``; other kinds left out."""
    out: dict[str, Any] = {}
    for name, question in questions.items():
        kind = _question_kind(question)
        if kind is not None:
            entry: dict[str, Any] = {"type": kind}
            if isinstance(question, dict):
                for field in (*_QUESTION_FIELDS[kind], "instructions"):
                    if field in question:
                        entry[field] = question[field]
            else:
                for field in _QUESTION_FIELDS[kind]:
                    entry[field] = getattr(question, field, None)
                instructions = getattr(question, "instructions", None)
                if instructions is not None:
                    entry["instructions"] = instructions
            out[name] = entry
    return out


def _question_kind(question: Any) -> Optional[str]:
    for kind, cls_name in (("noul", "Noul"), ("choice", "Choice"), ("score", "Score")):
        cls = _types.get(cls_name)
        if cls is not None and isinstance(question, cls):
            return kind
    if isinstance(question, dict):
        found = question.get("type")
        if isinstance(found, str) and found in _QUESTION_FIELDS:
            return found
    return None


# Answer class -> its fields, in sentry_sdk's order ("type" first).
_ANSWER_FIELDS = (
    ("NoulAnswer", "noul", ("noul",)),
    ("ChoiceAnswer", "choice", ("choice", "probabilities", "confidence")),
    ("ScoreAnswer", "score", ("score", "probabilities", "confidence", "legend")),
)


def _answers(answers: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, answer in answers.items():
        for cls_name, kind, fields in _ANSWER_FIELDS:
            cls = _types.get(cls_name)
            if cls is not None and isinstance(answer, cls):
                entry = {"type": kind}
                entry.update((field, getattr(answer, field)) for field in fields)
                out[name] = entry
                break
    return out


__all__ = ["TypeSafeIntegration"]
