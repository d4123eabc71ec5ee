"""The demo shop that `tripwire demo` runs: a small application that goes wrong.

It is executed with runpy under the module name "shop" (not "tripwire...."), so its
frames are the application's own: the SDK hides frames of the tripwire package.
"""

from __future__ import annotations


def main(notes: list[str]) -> None:
    """Raise and capture a few errors, record a transaction, logs and a check-in."""
    import tripwire

    prices = {"apple": 3, "pear": 4}

    def checkout(cart: list[str]) -> int:
        total = 0
        for item in cart:
            total += prices[item]  # raises KeyError for an unknown item
        return total

    def parse_quantity(text: str) -> int:
        return int(text)

    for user, cart in (("alice", ["apple", "kiwi"]), ("bob", ["pear", "kiwi"])):
        with tripwire.new_scope() as scope:
            scope.set_user({"id": user, "email": f"{user}@example.com"})
            scope.set_tag("shop", "demo")
            tripwire.add_breadcrumb(category="cart", message=f"{user} checks out {cart}")
            try:
                checkout(cart)
            except KeyError:
                tripwire.capture_exception()
    try:
        parse_quantity("three")
    except ValueError:
        tripwire.capture_exception()
    tripwire.capture_message("Payment provider answered slowly", level="warning")

    try:
        with tripwire.start_transaction(name="demo checkout", op="task"):
            with tripwire.start_span(op="db.query", name="SELECT * FROM carts"):
                pass
            with tripwire.start_span(op="http.client", name="POST /payments"):
                pass
    except Exception as exc:  # tracing may not be finished in this build
        notes.append(f"transaction skipped: {type(exc).__name__}: {exc}")

    try:
        from tripwire import logger as tripwire_logger

        tripwire_logger.info("demo order {order_id} placed", order_id=42)
        tripwire_logger.warning("demo stock low for {item}", item="pear")
    except Exception as exc:
        notes.append(f"logs skipped: {type(exc).__name__}: {exc}")

    try:
        from tripwire.crons import capture_checkin

        capture_checkin(monitor_slug="demo-nightly-report", status="ok", duration=1.5)
    except Exception as exc:
        notes.append(f"cron check-in skipped: {type(exc).__name__}: {exc}")
