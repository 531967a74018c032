"""Bodies of ``/keys``: a new key's request, a key as listed, and the answer that carries the
key itself (once)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from llmops_gateway.api.schemas.common import CamelModel, DateTimeText, Items
from llmops_gateway.db.models import ApiKey
from llmops_gateway.security.roles import Role, parse_grants

KeyName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
]


def _known_roles(roles: dict[str, str]) -> dict[str, str]:
    parse_grants(f"{scope}:{role}" for scope, role in roles.items())  # raises naming the entry
    return roles


Grants = Annotated[
    dict[str, str],
    Field(
        min_length=1,
        description='Environment (dev, stg, prod, or "*" for every one) -> role (viewer, '
        'operator, admin), e.g. {"dev": "operator", "prod": "viewer"}.',
        examples=[{"dev": "operator", "prod": "viewer"}, {"*": "admin"}],
    ),
    AfterValidator(_known_roles),
]


class KeyRequest(CamelModel):
    """``POST /keys``."""

    name: KeyName = Field(description="Who or what uses the key; the audit log records it.")
    roles: Grants
    expires_at: DateTimeText | None = Field(default=None, description="Unset: never expires.")

    def grants(self) -> dict[str, Role]:
        return parse_grants(f"{scope}:{role}" for scope, role in self.roles.items())


class KeyOut(CamelModel):
    id: str
    name: str
    roles: dict[str, str]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyOut:
        return cls.from_row(row, roles=row.grants)


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown this once, never stored. Send it as "
                     "'Authorization: Bearer <key>'.")  # fmt: skip

    @classmethod
    def made(cls, row: ApiKey, key: str) -> KeyCreated:
        return cls(**KeyOut.of(row).model_dump(), key=key)


class KeyList(Items[KeyOut]):
    pass
