"""Arguments of the order and M2M (machine SIM) tools."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .common import Args, Day, Id, Phone, require_one_of

Product = Annotated[str, Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=200)]
OveruseLimit = Annotated[int, Field(ge=0, le=1_000_000)]


class UpdateSubscription(Args):
    id: Id
    description: Description | None = None
    overuse_limit_dkk: OveruseLimit | None = None

    @model_validator(mode="after")
    def _has_change(self) -> UpdateSubscription:
        require_one_of(self, "description", "overuse_limit_dkk")
        return self


class ActivationOrder(Args):
    product_name: Product
    icc_id: Annotated[str, Field(pattern=r"^\d{18,22}$")]
    description: Description | None = None
    overuse_limit_dkk: OveruseLimit | None = None


class CancellationOrder(Args):
    subscription_id: Id | None = None
    phone_number: Phone | None = None
    cancel_on: Day | None = None

    @model_validator(mode="after")
    def _names_subscription(self) -> CancellationOrder:
        require_one_of(self, "subscription_id", "phone_number")
        return self


class ProductChangeOrder(Args):
    phone_number: Phone
    product_name: Product


class Consumption(Args):
    numbers: Annotated[list[Phone], Field(min_length=1, max_length=100)] | None = None
    subscription_ids: Annotated[list[Id], Field(min_length=1, max_length=100)] | None = None
