"""From a verified token's claims to the grants of :mod:`llmops_gateway.security.roles`.

Identity providers disagree on where roles live (``groups``; Keycloak's ``realm_access.roles``;
Auth0's namespaced ``https://acme.com/roles``) and on their names, so the gateway reads one
configured claim and maps its values through a table to grant strings (``"ml-admins" ->
("admin",)``, ``"ml-dev" -> ("dev:operator", "prod:viewer")``). Values not in the table are
someone else's business and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from llmops_gateway.security.roles import Role, parse_grants

RoleMap = Mapping[str, tuple[str, ...]]
"""A value of the roles claim -> grant strings understood by ``parse_grants``."""


def checked_role_map(role_map: Mapping[str, tuple[str, ...] | str]) -> RoleMap:
    """A read-only copy of ``role_map`` whose every grant parses, so a typo in a grant fails at
    start-up rather than at some user's first request (ValueError naming the entry). A single
    string is taken as one grant (``tuple("admin")`` would be five letters)."""
    checked: dict[str, tuple[str, ...]] = {}
    for value, grants in role_map.items():
        texts = (grants,) if isinstance(grants, str) else tuple(grants)
        try:
            parse_grants(texts)
        except ValueError as error:
            raise ValueError(f"OIDC role_map[{value!r}]: {error}") from None
        checked[value] = texts
    # a private copy: the caller's dict changing later must not change who is an admin
    return MappingProxyType(checked)


def claim_at(claims: Mapping[str, Any], name: str) -> Any:
    """``claims[name]``, else the dotted path ``name`` (``realm_access.roles``); ``None`` when
    absent. The literal name is tried first because namespaced claims are URLs, with dots."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def grants_from_claims(
    claims: Mapping[str, Any], roles_claim: str, role_map: RoleMap
) -> dict[str, Role]:
    """The grants the roles claim (a list of strings or one string) maps to; ``{}`` when it is
    absent, of another type, or holds no mapped value (a valid identity without any role)."""
    value = claim_at(claims, roles_claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    texts = [g for v in values if isinstance(v, str) and v in role_map for g in role_map[v]]
    return parse_grants(texts)
