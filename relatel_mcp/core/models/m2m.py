"""Arguments of the order and M2M (machine SIM) tools."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from .common import PHONE, SHOWN, Args, Day, Id, Phone, visible

# An order's product and description are shown to the human who approves it, and sent as shown
# (see SHOWN); a subscription's description changed by update_m2m_subscription is neither.
Product = Annotated[
    str,
    Field(min_length=1, max_length=100),
    WithJsonSchema({"type": "string", "description": "price plan, e.g. m2m-small-one"}),
    SHOWN,
    BeforeValidator(visible),
]
Description = Annotated[str, Field(max_length=200), WithJsonSchema({"type": "string"})]
OrderDescription = Annotated[Description, SHOWN, BeforeValidator(visible)]
OveruseLimit = Annotated[int, Field(ge=0, le=1_000_000), WithJsonSchema({"type": "integer"})]


class UpdateSubscription(Args):
    id: Id
    description: Description | None = None
    overuse_limit_dkk: OveruseLimit | None = None

    at_least_one = ("description", "overuse_limit_dkk")


class ActivationOrder(Args):
    product_name: Product
    icc_id: Annotated[str, Field(pattern=r"^[0-9]{18,22}$")]
    description: OrderDescription | None = None
    overuse_limit_dkk: OveruseLimit | None = None


class CancellationOrder(Args):
    subscription_id: Id | None = None
    phone_number: Phone | None = None
    cancel_on: Day | None = None

    at_least_one = ("subscription_id", "phone_number")


class ProductChangeOrder(Args):
    phone_number: Phone
    product_name: Product


# 1 to 100 of each, checked here (not shown: a model asking for a month's consumption sends a few).
Numbers = Annotated[
    list[Phone],
    Field(min_length=1, max_length=100),
    WithJsonSchema({"type": "array", "items": {"type": "string", "description": PHONE}}),
]
SubscriptionIds = Annotated[
    list[Id],
    Field(min_length=1, max_length=100),
    WithJsonSchema({"type": "array", "items": {"type": "integer"}}),
]


class Consumption(Args):
    numbers: Numbers | None = None
    subscription_ids: SubscriptionIds | None = None
