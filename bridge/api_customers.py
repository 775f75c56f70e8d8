"""Customer routes: read one, give it another identity, merge two (both audited)."""

from __future__ import annotations

from aiohttp import web

from bridge.chat import normalized_identity
from bridge.errors import ApiError
from bridge.operations import ApiRequest, OperationHandler
from bridge.serialize import customer_json
from conversations import IdentityTaken, NotFound

__all__ = ["HANDLERS"]


async def get_customer(call: ApiRequest) -> web.Response:
    """``GET /api/customers/{id}``: a merged id answers with the surviving customer."""
    customer_id = call.params["customer_id"]
    customer = await call.store.get_customer(customer_id)
    if customer is None:
        raise ApiError(404, f"no customer {customer_id}", field="customer_id")
    return web.json_response(customer_json(customer))


async def add_identity(call: ApiRequest) -> web.Response:
    """``POST /api/customers/{id}/identities``: 409 if another customer has it (merge them)."""
    customer_id = call.params["customer_id"]
    kind = call.body["kind"]
    value = normalized_identity(
        kind, call.body["value"], call.settings.default_country_code, "value"
    )
    try:
        customer = await call.store.add_identity(customer_id, kind, value)
    except NotFound:
        raise ApiError(404, f"no customer {customer_id}", field="customer_id") from None
    except IdentityTaken:
        raise ApiError(
            409, "another customer has this identity; merge the two instead", field="value"
        ) from None
    await call.store.audit(
        call.actor, "customer.identity.add", f"customer:{customer.id}", {"kind": kind}
    )
    return web.json_response(customer_json(customer))


async def merge_customers(call: ApiRequest) -> web.Response:
    """``POST /api/customers/{id}/merge``: ``absorbed_id`` goes into the path's customer."""
    keep_id = call.params["customer_id"]
    absorbed_id = call.body["absorbed_id"]
    keep = await call.store.get_customer(keep_id)
    if keep is None:
        raise ApiError(404, f"no customer {keep_id}", field="customer_id")
    absorbed = await call.store.get_customer(absorbed_id)
    if absorbed is None:
        raise ApiError(404, f"no customer {absorbed_id}", field="absorbed_id")
    if absorbed.id == keep.id:
        raise ApiError(409, "these are already the same customer", field="absorbed_id")
    try:
        customer = await call.store.merge_customers(keep.id, absorbed.id)
    except NotFound as exc:  # merged away by someone else in between
        raise ApiError(404, str(exc), field="absorbed_id") from None
    await call.store.audit(
        call.actor, "customer.merge", f"customer:{keep.id}", {"absorbed_id": absorbed.id}
    )
    return web.json_response(customer_json(customer))


HANDLERS: dict[str, OperationHandler] = {
    "getCustomer": get_customer,
    "addIdentity": add_identity,
    "mergeCustomers": merge_customers,
}
