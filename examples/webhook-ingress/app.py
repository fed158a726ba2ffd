"""webhook-ingress: validate a JSON webhook with type hints, emit a normalized event."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from pdk import DecodeError, Event, Plugin, ToolError, commands, decode

plugin = Plugin()


class Order(TypedDict):
    order_id: str
    amount_cents: int
    currency: Literal["EUR", "USD"]
    customer: NotRequired[str]


@plugin.on_event("orders", kinds=["webhook"])
def on_order(event: Event) -> list[object]:
    try:
        order = decode(Order, event.json)
    except (DecodeError, ValueError) as exc:
        raise ToolError(f"invalid order: {exc}", code="invalid_input") from None
    assert isinstance(order, dict)
    normalized = {
        "id": order["order_id"],
        "amount": order["amount_cents"] / 100,
        "currency": order["currency"],
        "customer": order.get("customer", "anonymous"),
    }
    return [commands.emit("orders.normalized", normalized)]
