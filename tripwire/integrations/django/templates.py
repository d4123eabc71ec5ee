"""Django templates: render spans, trace meta tags, and the template's frame in errors.

As sentry_sdk 2.75:

- `SimpleTemplateResponse.rendered_content` and `django.shortcuts.render` run inside
  a ``template.render`` span named by the template (the first of a list, as
  ``[name, ...]``), with the context as ``context`` data;
- `django.shortcuts.render` puts ``sentry_trace_meta`` (the ``<meta>`` tags that
  carry the trace to the browser) into the context it renders, unless the view did;
- an exception raised while a template was compiled or rendered gets a frame for
  the template line (`get_template_frame_from_exception`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.consts import OP
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch, patch_once
from tripwire.integrations.django import _MARK, _integration, _start_span


def _description(template_name: Any) -> Any:
    if isinstance(template_name, (list, tuple)):
        return f"[{template_name[0]}, ...]" if template_name else None
    return template_name


def patch_template_response(module: ModuleType) -> None:
    """`SimpleTemplateResponse.rendered_content` and `.render` (`django.template.response`)."""
    from tripwire.integrations.django.views import patch_response_render

    cls = module.SimpleTemplateResponse
    prop = cls.__dict__.get("rendered_content")
    if isinstance(prop, property) and not getattr(prop.fget, _MARK, False):
        getter = _wrap_rendered_content(prop.fget)
        setattr(getter, _MARK, True)
        patch(cls, "rendered_content", property(getter))
    patch_response_render(module)


def _wrap_rendered_content(original: Any) -> Any:
    @functools.wraps(original)
    def rendered_content(self: Any) -> Any:
        if _integration() is None:
            return original(self)
        span = _start_span(OP.TEMPLATE_RENDER, _description(self.template_name))
        if span is None:
            return original(self)
        with span:
            if streamed(span) is None:  # a streamed span carries no template context
                span.set_data("context", self.context_data)
            return original(self)

    return rendered_content


def patch_shortcuts(module: ModuleType) -> None:
    """`django.shortcuts.render`."""
    patch_once(module, "render", _wrap_render, _MARK)


def _wrap_render(original: Callable[..., Any]) -> Callable[..., Any]:
    from django.utils.safestring import mark_safe

    from tripwire.scope._current import get_current_scope

    @functools.wraps(original)
    def render(
        request: Any, template_name: Any, context: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if _integration() is None:
            return original(request, template_name, context, *args, **kwargs)
        context = context or {}
        if "sentry_trace_meta" not in context:
            try:
                context["sentry_trace_meta"] = mark_safe(  # noqa: S308 (our own tags)
                    get_current_scope().trace_propagation_meta()
                )
            except Exception:
                pass
        span = _start_span(OP.TEMPLATE_RENDER, _description(template_name))
        if span is None:
            return original(request, template_name, context, *args, **kwargs)
        with span:
            if streamed(span) is None:
                span.set_data("context", context)
            return original(request, template_name, context, *args, **kwargs)

    return render


def get_template_frame_from_exception(
    exc_value: Optional[BaseException],
) -> Optional[dict[str, Any]]:
    """The frame of the template line an exception came from, or None."""
    debug = getattr(exc_value, "template_debug", None)
    if debug is not None:
        return _frame_from_debug(debug)
    source = getattr(exc_value, "django_template_source", None)
    if source is not None:
        return _frame_from_source(source)
    from django.template import TemplateSyntaxError
    from django.template.base import Origin

    if isinstance(exc_value, TemplateSyntaxError):
        source = getattr(exc_value, "source", None)
        if isinstance(source, (tuple, list)) and source and isinstance(source[0], Origin):
            return _frame_from_source(source)
    return None


def _frame_from_debug(debug: dict[str, Any]) -> dict[str, Any]:
    lineno = debug["line"]
    before: list[str] = []
    after: list[str] = []
    current = None
    for number, line in debug["source_lines"]:
        if number < lineno:
            before.append(line)
        elif number > lineno:
            after.append(line)
        else:
            current = line
    return {
        "filename": debug["name"] if debug["name"] is not None else "<django template>",
        "lineno": lineno,
        "pre_context": before[-5:],
        "post_context": after[:5],
        "context_line": current,
        "in_app": True,
    }


def _line_starts(text: str) -> Iterator[int]:
    yield 0
    at = text.find("\n")
    while at >= 0:
        yield at + 1
        at = text.find("\n", at + 1)


def _frame_from_source(source: Any) -> Optional[dict[str, Any]]:
    if not source:
        return None
    origin, (start, end) = source
    filename = getattr(origin, "loadname", None)
    text = origin.reload()
    lineno: Optional[int] = None
    current = None
    before: list[str] = []
    after: list[str] = []
    upto = 0
    for number, following in enumerate(_line_starts(text)):
        line = text[upto:following]
        if start >= upto and end <= following:
            lineno = number
            current = line
        elif lineno is None:
            before.append(line)
        else:
            after.append(line)
        upto = following
    if current is None or lineno is None:
        return None
    return {
        "filename": filename if filename is not None else "<django template>",
        "lineno": lineno,
        "pre_context": before[-5:],
        "post_context": after[:5],
        "context_line": current,
    }


__all__ = ["get_template_frame_from_exception", "patch_shortcuts", "patch_template_response"]
