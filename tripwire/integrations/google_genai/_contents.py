"""The request side of a Gemini call as span data: messages, system instructions, tools.

`google-genai` accepts contents in many shapes (a string, parts, `Content` objects,
their dict forms, files, PIL images, lists of any of these); `messages` turns each
into sentry_sdk 2.75's message list: ``{"role": ..., "content": [parts]}``, function
responses as ``tool`` messages, inline bytes replaced by ``BLOB_DATA_SUBSTITUTE``.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from tripwire._types import BLOB_DATA_SUBSTITUTE
from tripwire.ai.utils import get_modality_from_mime_type, transform_google_content_part
from tripwire.utils import safe_serialize

# Built-in tools of the API, by the attribute that enables them on a `Tool`.
BUILT_IN_TOOLS = (
    ("google_search_retrieval", "Google Search retrieval tool"),
    ("google_search", "Google Search tool"),
    ("retrieval", "Retrieval tool"),
    ("enterprise_web_search", "Enterprise web search tool"),
    ("google_maps", "Google Maps tool"),
    ("code_execution", "Code execution tool"),
    ("computer_use", "Computer use tool"),
)


def _types() -> Any:
    # Only called while the application uses google-genai: it is imported already.
    from google.genai import types

    return types


def _pil_image() -> Any:
    module = sys.modules.get("PIL.Image")
    return getattr(module, "Image", None)


def _is_pil(value: Any) -> bool:
    image = _pil_image()
    return image is not None and isinstance(value, image)


def _pil_part(image: Any) -> dict[str, Any]:
    mime_type = f"image/{(image.format or 'JPEG').lower()}"
    return _media("blob", mime_type, "content", BLOB_DATA_SUBSTITUTE)


def _media(kind: str, mime_type: Optional[str], key: str, value: Any) -> dict[str, Any]:
    mime_type = mime_type or ""
    return {
        "type": kind,
        "modality": get_modality_from_mime_type(mime_type),
        "mime_type": mime_type,
        key: value,
    }


def _file_part(item: Any) -> Optional[dict[str, Any]]:
    uri = getattr(item, "uri", None)
    if uri is None:
        return None
    return _media("uri", getattr(item, "mime_type", None), "uri", uri)


def _tool_message(response: Any) -> Optional[dict[str, Any]]:
    """A function response as a ``tool`` message; None without a function name."""
    if isinstance(response, dict):
        call_id, name, payload = response.get("id"), response.get("name"), response.get("response")
        payload = {} if payload is None else payload
    else:
        call_id = getattr(response, "id", None)
        name = getattr(response, "name", None)
        payload = getattr(response, "response", None)
        payload = {} if payload is None else payload
    output = payload.get("output", payload) if isinstance(payload, dict) else payload
    if not name:
        return None
    return {
        "role": "tool",
        "content": {
            "toolCallId": str(call_id) if call_id else None,
            "toolName": str(name),
            "output": None if output is None else safe_serialize(output),
        },
    }


def _part(part: Any) -> Optional[dict[str, Any]]:
    """One part as a content part or a ``tool`` message (a function response); None to skip."""
    if part is None:
        return None
    if isinstance(part, dict):
        if "function_response" in part:
            response = part.get("function_response")
            return _tool_message(response) if response else None
        if part.get("text"):
            return {"text": part["text"], "type": "text"}
        media = transform_google_content_part(part)
        if media is not None and "inline_data" in part:
            media["content"] = BLOB_DATA_SUBSTITUTE  # bytes, or base64 of them
        return media
    response = getattr(part, "function_response", None)
    if response:
        return _tool_message(response)
    text = getattr(part, "text", None)
    if text:
        return {"text": text, "type": "text"}
    file_data = getattr(part, "file_data", None)
    if file_data and getattr(file_data, "file_uri", None) is not None:
        return _media("uri", getattr(file_data, "mime_type", None), "uri", file_data.file_uri)
    inline = getattr(part, "inline_data", None)
    if inline and getattr(inline, "data", None) is not None:
        return _media("blob", getattr(inline, "mime_type", None), "content", BLOB_DATA_SUBSTITUTE)
    return None


def _is_part_like(item: Any) -> bool:
    types = _types()
    if isinstance(item, (str, types.Part)):
        return True
    if isinstance(item, (list, types.Content)):
        return False
    if isinstance(item, dict):
        if "role" in item or "parts" in item:
            return False
        return bool(types.PartDict.__optional_keys__ & item.keys())
    return hasattr(item, "uri") or _is_pil(item)


def _loose_part(item: Any) -> Optional[dict[str, Any]]:
    """A part given on its own (in a list of parts) as a content part."""
    if isinstance(item, str):
        return {"text": item, "type": "text"}
    if isinstance(item, dict) and "inline_data" in item:
        mime_type = item["inline_data"].get("mime_type", "")
        return {"inline_data": {"mime_type": mime_type, "data": BLOB_DATA_SUBSTITUTE}}
    found = _part(item)
    if found is not None:
        return found
    if _is_pil(item):
        return _pil_part(item)
    if hasattr(item, "mime_type"):
        return _file_part(item)
    return None


def _turn(role: Any, parts: Any, default_role: str) -> list[dict[str, Any]]:
    """A turn's parts: one message for the content parts, then its tool messages."""
    content: list[Any] = []
    tools: list[Any] = []
    for part in parts:
        found = _part(part)
        if found is None:
            continue
        (tools if found.get("role") == "tool" else content).append(found)
    out = []
    if content:
        out.append(
            {"role": "assistant" if role == "model" else role or default_role, "content": content}
        )
    return out + tools


def messages(contents: Any) -> list[dict[str, Any]]:
    """`contents` as sentry_sdk's gen_ai messages (see the module docstring)."""
    if contents is None:
        return []
    if isinstance(contents, str):
        return [{"role": "user", "content": contents}]
    if isinstance(contents, list):
        if contents and all(_is_part_like(item) for item in contents):
            parts = [p for p in map(_loose_part, contents) if p is not None]
            return [{"role": "user", "content": parts}]
        return [message for item in contents for message in messages(item)]
    if isinstance(contents, dict):
        role = contents.get("role", "user")
        if contents.get("parts"):
            return _turn(role, contents["parts"], "user")
        if "text" in contents:
            return [{"role": role, "content": [{"text": contents["text"], "type": "text"}]}]
        if "inline_data" in contents:
            mime_type = contents["inline_data"].get("mime_type", "")
            return [{"inline_data": {"mime_type": mime_type, "data": BLOB_DATA_SUBSTITUTE}}]
        return []
    if getattr(contents, "parts", None):
        return _turn(getattr(contents, "role", None) or "user", contents.parts, "user")
    found = _part(contents)
    if found:
        return [found] if found.get("role") == "tool" else [{"role": "user", "content": [found]}]
    if _is_pil(contents):
        return [{"role": "user", "content": [_pil_part(contents)]}]
    if hasattr(contents, "uri") and hasattr(contents, "mime_type"):
        part = _file_part(contents)
        if part is not None:
            return [{"role": "user", "content": [part]}]
    text = getattr(contents, "text", None)
    if text:
        return [{"role": "user", "content": [{"text": str(text), "type": "text"}]}]
    return []


def text_of(contents: Any) -> Optional[str]:
    """The text parts of `contents`, joined by spaces; None without any."""
    texts: list[str] = []
    for message in messages(contents):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    return " ".join(texts) if texts else None


# -- system instructions and tools -----------------------------------------------------


def _instruction(value: Any, content_allowed: bool) -> list[dict[str, Any]]:
    types = _types()
    if isinstance(value, str):
        return [{"type": "text", "content": value}]
    if isinstance(value, types.Part) and value.text:
        return [{"type": "text", "content": value.text}]
    if content_allowed and isinstance(value, types.Content):
        parts = value.parts if isinstance(value.parts, list) else []
        return [{"type": "text", "content": p.text} for p in parts if isinstance(p.text, str)]
    if isinstance(value, dict) and "text" in value:
        text = value["text"]
        return [] if text is None else [{"type": "text", "content": text}]
    if content_allowed and isinstance(value, dict):
        out = []
        for part in value.get("parts") or []:
            if isinstance(part, types.Part):
                text = part.text
            elif isinstance(part, dict):
                text = part.get("text")
            else:
                continue
            if isinstance(text, str):
                out.append({"type": "text", "content": text})
        return out
    return []


def system_instructions(value: Any) -> list[dict[str, Any]]:
    """A config's system instruction as text parts (``{"type": "text", "content": ...}``)."""
    if isinstance(value, list):
        return [part for item in value for part in _instruction(item, False)]
    return _instruction(value, True)


def tools_data(tools: Any) -> Optional[list[dict[str, Any]]]:
    """The config's tools as ``{"name", "description"}`` entries; None without any."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        if callable(tool):
            out.append(
                {
                    "name": getattr(tool, "__name__", "unknown"),
                    "description": getattr(tool, "__doc__", None),
                }
            )
        elif getattr(tool, "function_declarations", None) is not None:
            out.extend(
                {
                    "name": getattr(declaration, "name", None),
                    "description": getattr(declaration, "description", None),
                }
                for declaration in tool.function_declarations
            )
        else:
            for attribute, description in BUILT_IN_TOOLS:
                if getattr(tool, attribute, None):
                    out.append({"name": attribute, "description": description})
                    break
    return out or None
