"""Roles, scoped per environment, and the principal that holds them.

Three roles, each including the one below: ``viewer`` reads; ``operator`` also submits and
cancels jobs, creates / promotes / rolls back / deletes endpoints, creates dataset versions and
restores, imports models; ``admin`` also changes integration configs, replays dead letters,
manages keys and reads the audit log. A principal holds a role per environment (``dev``,
``stg``, ``prod``) or for every environment (``*``): an operator of dev is a stranger to prod.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, Literal, get_args

from llmops_shared.config import Environment

EVERY_ENVIRONMENT: Final = "*"
"""The scope of a grant that holds in every environment."""
ENVIRONMENTS: Final[tuple[str, ...]] = get_args(Environment)
SCOPES: Final = frozenset({*ENVIRONMENTS, EVERY_ENVIRONMENT})


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            known = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {name.strip()!r} (one of {known})") from None


Grants = Mapping[str, Role]
"""Environment (or ``*``) -> the role held there."""

_GRANT = re.compile(r"^(?:(?P<scope>[a-z*]+)[:=])?(?P<role>[a-z]+)$")


def parse_grants(texts: Iterable[str]) -> dict[str, Role]:
    """``["admin"]`` (every environment), ``["dev:operator", "prod:viewer"]``; the highest role
    wins where a scope repeats. Raises ValueError naming the bad entry."""
    grants: dict[str, Role] = {}
    for text in texts:
        match = _GRANT.match(text.strip().lower())
        if match is None:
            raise ValueError(f"{text!r} is not ROLE or ENVIRONMENT:ROLE")
        scope = match["scope"] or EVERY_ENVIRONMENT
        if scope not in SCOPES:
            raise ValueError(f"{text!r}: unknown environment {scope!r} (dev, stg, prod or *)")
        role = Role.named(match["role"])
        grants[scope] = max(role, grants.get(scope, role))
    return grants


def format_grants(grants: Grants) -> dict[str, str]:
    """The JSON form of ``grants``: ``{"dev": "operator", "*": "viewer"}``."""
    return {scope: role.label for scope, role in sorted(grants.items())}


PrincipalKind = Literal["api_key", "oidc", "configured_key", "anonymous"]


@dataclass(frozen=True)
class Principal:
    """Who makes a request, as verified: ``name`` is what the audit log and every "who" the API
    shows record (an API key's name, an OIDC token's subject)."""

    name: str
    kind: PrincipalKind
    grants: Grants = field(default_factory=dict)

    def role_in(self, environment: str) -> Role | None:
        """The highest role held in ``environment`` (a ``*`` grant counts everywhere)."""
        held = [
            role for scope, role in self.grants.items() if scope in (environment, EVERY_ENVIRONMENT)
        ]
        return max(held, default=None)

    def can(self, role: Role, environment: str) -> bool:
        held = self.role_in(environment)
        return held is not None and held >= role

    def can_anywhere(self, role: Role) -> bool:
        return any(self.can(role, environment) for environment in ENVIRONMENTS)

    def can_everywhere(self, role: Role) -> bool:
        return all(self.can(role, environment) for environment in ENVIRONMENTS)

    def environments(self, role: Role) -> list[str]:
        """The environments where this principal holds ``role`` (or more)."""
        return [env for env in ENVIRONMENTS if self.can(role, env)]
