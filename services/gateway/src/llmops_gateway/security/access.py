"""What each operation needs, and the check of a caller against it.

Every route declares an :class:`Access`: the role, and where the environment it is checked in
comes from (:class:`Scope`). Scopes that a route cannot know before it reads the body or the
stored object (``TARGET``) are checked twice: on entry the caller must hold the role in some
environment (a viewer is refused before any work), and the use case checks the object's own
environment through :meth:`Caller.require_in` before it changes or shows anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from llmops_gateway.security.roles import ENVIRONMENTS, Principal, Role


class Scope(StrEnum):
    GATEWAY = "gateway"
    """The gateway's own ``ENVIRONMENT``: training jobs, pipelines and runs run where the
    stack runs."""
    PATH = "path"
    """The ``{environment}`` path parameter (integration configs)."""
    TARGET = "target"
    """The environment of the request body or of the stored object (serving endpoints)."""
    ANY = "any"
    """Resources without an environment (catalog models, datasets and their versions): the
    role in at least one environment. They only add records; what reaches an environment is
    still decided by that environment's role."""
    ALL = "all"
    """Platform operations (dead-letter replay, keys, the audit log): the role in every
    environment, since they reach every environment at once."""


@dataclass(frozen=True)
class Access:
    """The rule of one operation."""

    role: Role
    scope: Scope

    def describe(self) -> dict[str, str]:
        """How the OpenAPI document states it (``x-llmops-access``)."""
        return {"role": self.role.label, "scope": self.scope.value}


VIEW_ANY: Final = Access(Role.VIEWER, Scope.ANY)


class AccessDenied(Exception):
    """403: the caller is known but lacks the role; the message names role and environment."""


def missing(principal: Principal, role: Role, environment: str | None) -> str:
    """Why ``principal`` may not: the role needed, where (``None``: every environment, ``*``:
    any), and what it holds there."""
    looked_at = ENVIRONMENTS if environment in (None, "*") else (environment,)
    held = ", ".join(f"{env}: {r.label}" for env in looked_at if (r := principal.role_in(env)))
    if environment is None:
        where = "in every environment (dev, stg, prod)"
    elif environment == "*":
        where = "in at least one environment"
    else:
        where = f"in {environment}"
    return (
        f"{principal.name!r} needs the {role.label} role {where} (holds {held or 'no role there'})"
    )


@dataclass
class Caller:
    """The verified principal of one request and the rule of its route; remembers the
    environment a check was made in (the audit log records it)."""

    principal: Principal
    access: Access
    gateway_environment: str
    environment: str | None = None
    note: str | None = None
    """What the audit record adds (e.g. a client's own claim of who it is)."""

    def require_in(self, environment: str, role: Role | None = None) -> None:
        """Raise :class:`AccessDenied` unless the caller holds the route's role (or ``role``)
        in ``environment``."""
        needed = role or self.access.role
        self.environment = environment
        if not self.principal.can(needed, environment):
            raise AccessDenied(missing(self.principal, needed, environment))

    def viewable(self) -> list[str]:
        """The environments whose records this caller may list."""
        return self.principal.environments(Role.VIEWER)

    def may(self, role: Role, environment: str) -> bool:
        """Whether the caller holds ``role`` in ``environment`` (what an answer shows)."""
        return self.principal.can(role, environment)

    def sees_specs(self, environment: str | None = None) -> bool:
        """Stored specs (data and model locations) are shown to operators and admins only:
        of ``environment``, else of the gateway's own."""
        return self.may(Role.OPERATOR, environment or self.gateway_environment)

    def enter(self, path_environment: str | None) -> None:
        """The check on entry to the route (see the module)."""
        access, principal = self.access, self.principal
        match access.scope:
            case Scope.GATEWAY:
                self.require_in(self.gateway_environment)
            case Scope.PATH:
                if path_environment is None:  # a route bug, not the caller's
                    raise RuntimeError("Scope.PATH on a route without {environment}")
                self.require_in(path_environment)
            case Scope.ALL:
                if not principal.can_everywhere(access.role):
                    raise AccessDenied(missing(principal, access.role, None))
            case Scope.ANY | Scope.TARGET:
                if not principal.can_anywhere(access.role):
                    raise AccessDenied(missing(principal, access.role, "*"))


@dataclass(frozen=True)
class Refusal:
    """A credential refused at authentication: who it claimed to be (a stored key's name, when
    known) and why, for the audit log."""

    claimed: str | None
    reason: str


Authorize = Callable[[str], None]
"""Given to a use case that finds the environment only in the stored object: raises
:class:`AccessDenied` unless the caller may act there (:meth:`Caller.require_in`)."""
