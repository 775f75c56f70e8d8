"""Who reads text unredacted: admins who ask for it, nobody else.

The store masks card, phone and ID numbers when it writes
(``conversations.RedactionPolicy``) and reads the masked text by default. A
route that can return the original takes ``?unredacted=true``; only a user with
the admin role may pass it (others get 403 rather than a silently masked
answer), and the route audits the read with ``"unredacted": true``.
"""

from __future__ import annotations

from bridge.errors import ApiError
from bridge.operations import ApiRequest

__all__ = ["unredacted_read"]


def unredacted_read(call: ApiRequest) -> bool:
    """Whether this request reads unredacted text (its ``unredacted`` parameter).

    Raises:
        ApiError: 403 when someone other than an admin user asks for it.
    """
    if not call.params.get("unredacted", False):
        return False
    principal = call.caller
    if principal.kind != "user" or "admin" not in principal.roles:
        raise ApiError(403, "only admins may read unredacted text", field="unredacted")
    return True
