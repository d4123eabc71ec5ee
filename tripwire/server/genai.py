"""gen_ai spans on the trace page: model, tokens, prompts and an honest cost estimate.

`summarize` reads the spans of a trace (transaction spans and streamed spans alike:
both keep the ``gen_ai.*`` keys in their data) and gives each gen_ai span a
``gen_ai`` record (model, provider, tokens, prompt and response when the SDK sent
them, cost) and the trace its totals.

Cost is an estimate, and only for models in `PRICES`: published per-token list
prices (standard tier, short context; no cache, batch or other discount), which
providers change. A model not in the table has no cost, and the totals say how many
calls they cover. Tokens of a span whose descendants report tokens too (an agent
run summing its model calls) are shown on the span but counted once, at the calls.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Optional

__all__ = ["PRICES", "PRICES_AS_OF", "format_cost", "model_price", "summarize"]

# USD per million tokens: (input, output). Embedding models bill input only.
PRICES_AS_OF = "2025-10"
PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.0, 60.0),
    "o3": (2.0, 8.0),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
    # Anthropic
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
    # Google
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.0-flash": (0.10, 0.40),
}

# A dated or pinned snapshot of a model is priced as the model: gpt-4o-2024-08-06,
# claude-3-5-sonnet-20241022, gemini-2.0-flash-001, ...-latest. Nothing else is
# (gpt-4o-audio-preview is not gpt-4o).
_SNAPSHOT = re.compile(r"-(?:\d{4}(?:-\d{2}-\d{2})?|\d{8}|\d{3}|latest)$")
# Provider prefixes some libraries put before the model name.
_PREFIX = re.compile(r"^(?:models/|openai/|anthropic/|google/|gemini/)")

# Spans that are not model calls but may sum their children's usage.
_NOT_CALLS = ("invoke_agent", "execute_tool", "handoff", "create_agent")


def model_price(model: Optional[str]) -> Optional[tuple[str, tuple[float, float]]]:
    """The table's name and price for `model`, or None if it is not in the table."""
    if not model:
        return None
    name = _PREFIX.sub("", model.strip().lower())
    for _ in range(2):
        if name in PRICES:
            return name, PRICES[name]
        stripped = _SNAPSHOT.sub("", name)
        if stripped == name:
            break
        name = stripped
    return None


def format_cost(cost: Optional[float]) -> str:
    """``$0.0042``: two significant digits below a cent, else cents."""
    if cost is None:
        return ""
    if cost <= 0:
        return "$0"
    if cost >= 0.01:
        return f"${cost:,.2f}" if cost >= 1 else f"${cost:.4f}"
    decimals = -math.floor(math.log10(cost)) + 1
    return "$" + f"{cost:.{decimals}f}".rstrip("0").rstrip(".")


def summarize(spans: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Annotate gen_ai `spans` with a ``gen_ai`` record; the trace's totals, or None.

    Totals: ``calls`` (spans with token usage, counted once), ``input_tokens``,
    ``output_tokens``, ``total_tokens``, ``cost`` (the priced calls' sum, or None),
    ``priced_calls``, ``unpriced_models``, and ``models`` (per model: calls, tokens,
    cost).
    """
    found = []
    for span in spans:
        data = span.get("data")
        if not isinstance(data, dict):
            continue
        op = span.get("op") or ""
        if not (op.startswith("gen_ai.") or any(str(k).startswith("gen_ai.") for k in data)):
            continue
        span["gen_ai"] = info = _span_info(op, data)
        found.append((span, info))
    if not found:
        return None
    # A span whose descendants carry usage (an agent run) is not counted itself.
    parents = {s["span_id"]: s.get("parent_span_id") for s in spans}
    summed: set[Optional[str]] = set()
    for span, info in found:
        if info["has_usage"]:
            parent, hops = parents.get(span["span_id"]), 0
            while parent is not None and parent not in summed and hops < 1000:
                summed.add(parent)
                parent, hops = parents.get(parent), hops + 1
    totals: dict[str, Any] = {
        "spans": len(found),
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cost": None,
        "priced_calls": 0,
        "unpriced_models": [],
        "models": [],
        "prices_as_of": PRICES_AS_OF,
    }
    models: dict[str, dict[str, Any]] = {}
    for span, info in found:
        if not info["has_usage"] or span["span_id"] in summed:
            info["counted"] = False
            continue
        info["counted"] = True
        totals["calls"] += 1
        totals["input_tokens"] += info["input_tokens"] or 0
        totals["output_tokens"] += info["output_tokens"] or 0
        totals["total_tokens"] += info["total_tokens"] or 0
        name = info["model"] or "unknown model"
        row = models.setdefault(
            name,
            {"model": name, "calls": 0, "input_tokens": 0, "output_tokens": 0, "cost": None},
        )
        row["calls"] += 1
        row["input_tokens"] += info["input_tokens"] or 0
        row["output_tokens"] += info["output_tokens"] or 0
        if info["cost"] is not None:
            totals["priced_calls"] += 1
            totals["cost"] = (totals["cost"] or 0.0) + info["cost"]
            row["cost"] = (row["cost"] or 0.0) + info["cost"]
        elif name not in totals["unpriced_models"]:
            totals["unpriced_models"].append(name)
    for row in models.values():
        row["cost_text"] = format_cost(row["cost"])
    totals["models"] = sorted(
        models.values(), key=lambda r: -(r["input_tokens"] + r["output_tokens"])
    )
    totals["cost_text"] = format_cost(totals["cost"])
    return totals


def _span_info(op: str, data: dict[str, Any]) -> dict[str, Any]:
    operation = _text(data.get("gen_ai.operation.name")) or op.partition(".")[2] or None
    model = _text(data.get("gen_ai.response.model")) or _text(data.get("gen_ai.request.model"))
    input_tokens = _int(data.get("gen_ai.usage.input_tokens"))
    output_tokens = _int(data.get("gen_ai.usage.output_tokens"))
    total = _int(data.get("gen_ai.usage.total_tokens"))
    if total is None and (input_tokens is not None or output_tokens is not None):
        total = (input_tokens or 0) + (output_tokens or 0)
    has_usage = input_tokens is not None or output_tokens is not None
    priced = model_price(model) or model_price(_text(data.get("gen_ai.request.model")))
    cost = None
    if priced is not None and has_usage and (operation or "") not in _NOT_CALLS:
        price_in, price_out = priced[1]
        cost = ((input_tokens or 0) * price_in + (output_tokens or 0) * price_out) / 1e6
    prompt: list[dict[str, str]] = []
    instructions = data.get("gen_ai.system_instructions")
    if instructions is not None:
        prompt.extend(_messages(instructions, "system"))
    for key in ("gen_ai.request.messages", "gen_ai.input.messages"):
        if data.get(key) is not None:
            prompt.extend(_messages(data[key], "user"))
            break
    for key, role in (
        ("gen_ai.embeddings.input", "input"),
        ("gen_ai.tool.input", "tool input"),
        ("gen_ai.tool.call.arguments", "tool arguments"),
    ):
        if data.get(key) is not None:
            prompt.extend(_messages(data[key], role))
    response: list[dict[str, str]] = []
    for key, role in (
        ("gen_ai.response.text", "assistant"),
        ("gen_ai.output.messages", "assistant"),
        ("gen_ai.response.tool_calls", "tool calls"),
        ("gen_ai.tool.output", "tool output"),
        ("gen_ai.tool.call.result", "tool result"),
    ):
        if data.get(key) is not None:
            response.extend(_messages(data[key], role))
    return {
        "operation": operation,
        "model": model,
        "request_model": _text(data.get("gen_ai.request.model")),
        "provider": _text(data.get("gen_ai.system")) or _text(data.get("gen_ai.provider.name")),
        "agent": _text(data.get("gen_ai.agent.name")),
        "tool": _text(data.get("gen_ai.tool.name")),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total,
        "cached_tokens": _int(data.get("gen_ai.usage.input_tokens.cached"))
        or _int(data.get("gen_ai.usage.cache_read.input_tokens")),
        "reasoning_tokens": _int(data.get("gen_ai.usage.output_tokens.reasoning"))
        or _int(data.get("gen_ai.usage.reasoning.output_tokens")),
        "has_usage": has_usage,
        "cost": cost,
        "cost_text": format_cost(cost),
        "priced_as": priced[0] if priced is not None else None,
        "prompt": prompt,
        "response": response,
    }


def _messages(value: Any, default_role: str) -> list[dict[str, str]]:
    # SDKs send these as JSON text (a list of messages, of strings, or one object);
    # anything else is shown as sent.
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [{"role": default_role, "text": value}]
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return [{"role": default_role, "text": _show(parsed)}]
    out = []
    for entry in parsed[:200]:
        if isinstance(entry, dict) and ("content" in entry or "parts" in entry):
            role = _text(entry.get("role")) or default_role
            content = entry.get("content", entry.get("parts"))
            out.append({"role": role, "text": _content_text(content)})
        else:
            out.append({"role": default_role, "text": _content_text(entry)})
    return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p.get("text", p.get("content")) for p in content]
        if texts and all(isinstance(t, str) for t in texts):
            return "\n".join(t for t in texts if isinstance(t, str))
    return _show(content)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=repr)


def _int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
