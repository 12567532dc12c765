"""Arguments of the order and M2M (machine SIM) tools."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from .common import PHONE, SHOWN, Args, Day, Id, Phone, visible

# An order's product and description are shown to the human who approves it, and sent as shown
# (see SHOWN); a subscription's description changed by update_m2m_subscription is neither. Beyond
# the contract, for that human: their lengths (the question stays readable) and an ICC id of
# digits only (nothing can hide in it).
Product = Annotated[
    str,
    Field(min_length=1, max_length=100),
    WithJsonSchema({"type": "string", "description": "price plan, e.g. m2m-small-one"}),
    SHOWN,
    BeforeValidator(visible),
]
OrderDescription = Annotated[
    str, Field(max_length=200), WithJsonSchema({"type": "string"}), SHOWN, BeforeValidator(visible)
]


class UpdateSubscription(Args):
    id: Id
    description: str | None = None
    overuse_limit_dkk: int | None = None

    at_least_one = ("description", "overuse_limit_dkk")


class ActivationOrder(Args):
    product_name: Product
    icc_id: Annotated[str, Field(pattern=r"^[0-9]+$")]
    description: OrderDescription | None = None
    overuse_limit_dkk: int | None = None


class CancellationOrder(Args):
    subscription_id: Id | None = None
    phone_number: Phone | None = None
    cancel_on: Day | None = None

    at_least_one = ("subscription_id", "phone_number")


class ProductChangeOrder(Args):
    phone_number: Phone
    product_name: Product


Numbers = Annotated[
    list[Phone], WithJsonSchema({"type": "array", "items": {"type": "string", "description": PHONE}})
]
SubscriptionIds = Annotated[list[Id], WithJsonSchema({"type": "array", "items": {"type": "integer"}})]


class Consumption(Args):
    numbers: Numbers | None = None
    subscription_ids: SubscriptionIds | None = None
