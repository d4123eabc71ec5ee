"""tripwire.raven.processors: scrubbing as raven 6.x did it, checked on the wire."""

from __future__ import annotations

from typing import Any

from tripwire.raven import Client
from tripwire.raven.processors import (
    Processor,
    RemovePostDataProcessor,
    RemoveStackLocalsProcessor,
    SanitizeKeysProcessor,
    SanitizePasswordsProcessor,
)
from tripwire.testing import MemoryTransport

MASK = "********"


def make(**options: Any) -> tuple[Client, MemoryTransport]:
    memory = MemoryTransport()
    options.setdefault("install_sys_hook", False)
    return Client(transport=memory, **options), memory


def login(password: str, api_key: str, card: str) -> None:
    raise PermissionError("denied")


def capture_login(client: Client) -> None:
    client.http_context(
        {
            "url": "http://shop/login",
            "method": "POST",
            "data": {"password": "p", "username": "ann"},
            "query_string": "password=1&foo=2&api_key=3",
            "cookies": "sessionid=abc; secret=s",
            "headers": {"Authorization": "Basic x", "Cookie": "a=1; password=2", "X-Id": "7"},
            "env": {"SECRET_KEY": "s", "HOME": "/"},
        }
    )
    try:
        login("hunter2", "k-123", "4111 1111 1111 1111")
    except PermissionError:
        client.captureException(
            extra={
                "password": "p",
                "user_password": "p",
                "token": "t",
                "nested": {"secret": 1, "ok": 2},
                "secret_list": ["a", "b"],
                "cc": "4111-1111-1111-1111",
                "count": 4111111111111111,
                "none": None,
            }
        )


def test_default_sanitize_passwords_processor() -> None:
    client, memory = make()
    capture_login(client)
    event = memory.events[0]
    extra = event["extra"]
    assert extra["password"] == MASK
    assert extra["user_password"] == MASK  # keys match on a substring
    assert extra["token"] == "t"  # not one of raven's keys
    assert extra["nested"] == {"secret": MASK, "ok": 2}
    assert extra["secret_list"] == [MASK, MASK]
    assert extra["cc"] == MASK  # looks like a card number
    assert extra["count"] == 4111111111111111  # only strings are checked
    assert extra["none"] is None
    request = event["request"]
    assert request["data"] == {"password": MASK, "username": "ann"}
    assert request["query_string"] == f"password={MASK}&foo=2&api_key={MASK}"
    assert request["cookies"] == f"sessionid=abc; secret={MASK}"
    assert request["headers"] == {
        "Authorization": MASK,
        "Cookie": f"a=1; password={MASK}",
        "X-Id": "7",
    }
    assert request["env"] == {"SECRET_KEY": MASK, "HOME": "/"}
    frame_vars = event["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]
    assert frame_vars == {"password": MASK, "api_key": MASK, "card": MASK}


def test_no_processors_means_no_scrubbing() -> None:
    client, memory = make(processors=[])
    capture_login(client)
    event = memory.events[0]
    assert event["extra"]["password"] == "p"
    assert event["request"]["headers"]["Authorization"] == "Basic x"
    assert event["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]["password"] == (
        "'hunter2'"
    )


def test_processors_by_raven_dotted_path() -> None:
    client, memory = make(
        processors=[
            "raven.processors.RemovePostDataProcessor",
            "raven.processors.RemoveStackLocalsProcessor",
        ]
    )
    assert [type(p) for p in client.get_processors()] == [
        RemovePostDataProcessor,
        RemoveStackLocalsProcessor,
    ]
    capture_login(client)
    event = memory.events[0]
    assert "data" not in event["request"]
    assert event["request"]["headers"]["Authorization"] == "Basic x"
    assert all("vars" not in f for f in event["exception"]["values"][0]["stacktrace"]["frames"])


def test_sanitize_keys_processor_uses_client_keys() -> None:
    client, memory = make(processors=[SanitizeKeysProcessor], sanitize_keys=["custom", "Token"])
    client.captureMessage("m", extra={"my_custom_key": 1, "CSRF_TOKEN": "t", "password": "p"})
    extra = memory.events[0]["extra"]
    assert extra["my_custom_key"] == MASK
    assert extra["CSRF_TOKEN"] == MASK
    assert extra["password"] == "p"


def test_custom_processor_class_and_instance() -> None:
    class AddTag(Processor):
        def get_data(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            data["tags"]["processed"] = "yes"
            return data

    class DropExtra(Processor):
        def filter_extra(self, data: dict[str, Any]) -> None:
            data.clear()

    client, memory = make(processors=[AddTag, DropExtra(None)])
    client.captureMessage("m", extra={"a": 1})
    event = memory.events[0]
    assert event["tags"]["processed"] == "yes"
    assert event.get("extra", {}) == {}


def test_processor_sees_stack_of_messages() -> None:
    client, memory = make(processors=[RemoveStackLocalsProcessor])
    client.captureMessage("m", stack=True)
    frames = memory.events[0]["threads"]["values"][0]["stacktrace"]["frames"]
    assert frames and all("vars" not in f for f in frames)


def test_sanitize_passwords_processor_directly() -> None:
    processor = SanitizePasswordsProcessor(None)
    assert processor.FIELDS == processor.sanitize_keys == SanitizePasswordsProcessor.KEYS
    out = processor.process(
        {"request": {"data": "password=1&foo=2"}, "extra": {"pw": "password", "PASSWORD": 3}}
    )
    assert out["request"]["data"] == f"password={MASK}&foo=2"
    assert out["extra"] == {"pw": "password", "PASSWORD": MASK}
