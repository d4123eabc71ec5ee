"""Sample code for the frame tests: the tests assert these exact line numbers and lines."""


def inner(x: int) -> None:
    y = x * 2
    raise ValueError(f"bad {y}")


def outer() -> None:
    a = 1
    inner(a)


def hidden_caller() -> None:
    __traceback_hide__ = True  # read from the frame locals
    outer()


def visible_caller() -> None:
    __traceback_hide__ = False
    hidden_caller()


def noop() -> None:
    return None


def recurse(n: int) -> int:
    return recurse(n + 1)


def deep(n: int) -> int:
    if n == 0:
        raise KeyError("bottom")
    return deep(n - 1)


def chained() -> None:
    try:
        outer()
    except ValueError as exc:
        raise RuntimeError("wrapped") from exc


def during() -> None:
    try:
        outer()
    except ValueError:
        raise RuntimeError("during handling")  # implicit __context__


def suppressed() -> None:
    try:
        outer()
    except ValueError:
        raise RuntimeError("suppressed") from None


def pytest_style_hidden() -> None:
    __tracebackhide__ = True
    outer()
