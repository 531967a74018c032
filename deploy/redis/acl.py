#!/usr/bin/env python3
"""Generate Redis 7 ACL users for the platform: one user per service, least privilege.

Every service connects as its own user (``redis://<service>:<password>@redis:6379/0``) and may
run exactly the commands its code issues, on exactly the keys it touches. Redis 7 *selectors*
(``(~keys +commands)``) tie commands to keys, so a worker can read and acknowledge its own
stream but not append to it, and append to ``llmops.status`` but not read it:

* consumer (every worker, and the gateway on ``llmops.status``): group commands on the stream
  it consumes (XGROUP CREATE, XREADGROUP, XACK, XAUTOCLAIM, XCLAIM, XPENDING, XINFO GROUPS);
  XADD to ``<stream>.dlq``; SET/MGET of ``llmops:idem:<group>:*``; the attempt log hash
  ``llmops:attempts:<stream>:<group>``; EVALSHA of the commit script over exactly those keys
  and the streams it publishes to; its heartbeat hash ``llmops:workers:<service>:*`` and the
  index ``llmops:workers``; XREAD/XREVRANGE of ``llmops.config`` (integration flags);
* publisher: XADD to ``llmops.status`` (tracking also ``llmops.models``; the gateway every stream);
* tracking: the model-version poller state ``tracking:model-versions:*`` and the webhook delivery
  ids ``tracking:mlflow-webhook:delivery:*``;
* workflow: its pipeline ledger ``llmops:workflow:*`` (one record per job, updated in an
  optimistic transaction: WATCH, GET, MULTI, SET/DEL and SADD/SREM of the watched set, EXEC;
  UNWATCH when nothing changes);
* serving: the tombstones of deleted endpoints ``llmops:serving:tombstones:*`` (GET, SET);
* gateway: besides the above, the integrations report (XINFO GROUPS of every stream, XLEN of
  every ``.dlq``, every worker's heartbeat) and dead-letter listing and replay (XREVRANGE of the
  ``.dlq`` streams; EVAL of the replay script: XRANGE, XADD, XDEL, and the replay marker
  ``llmops:dlq-replayed:*``);
* operator: what ``llmops streams`` and ``llmops dlq`` (list, replay) need, nothing else;
* default: no password, PING only (health checks); every other command is refused.

Passwords are never written in clear: each user gets ``#<sha256>`` of its password, read from
``REDIS_PASSWORD_<USER>`` (``REDIS_PASSWORD_GITHUB_SYNC`` for github-sync) or from the file
``<--password-dir>/<user>`` (a mounted Kubernetes Secret). ``--example`` writes the users with no
password at all (nobody can log in): the reviewed reference, ``users.acl.example``.

``--namespace`` is the services' ``STREAM_NAMESPACE`` (every key above gets it as a prefix) and
``--user-prefix`` keeps the users of several environments sharing one Redis apart
(``--namespace stg: --user-prefix stg-``).

Usage: ``python deploy/redis/acl.py --out users.acl`` (stdlib only; runs in any service image).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TRAINING = "llmops.training"
SERVING = "llmops.serving"
CATALOG = "llmops.catalog"
DATASETS = "llmops.datasets"
MODELS = "llmops.models"
STATUS = "llmops.status"
CONFIG = "llmops.config"
STREAMS = (TRAINING, SERVING, CATALOG, DATASETS, MODELS, STATUS, CONFIG)
"""Every contract stream (``llmops_shared.events.Stream``)."""

CONSUMES: Mapping[str, str] = {
    "gateway": STATUS,
    "tracking": TRAINING,
    "workflow": TRAINING,
    "serving": SERVING,
    "registry": CATALOG,
    "versioning": DATASETS,
    "github-sync": MODELS,
}
"""The stream each service consumes; its consumer group is the service name."""

PUBLISHES: Mapping[str, tuple[str, ...]] = {
    "gateway": STREAMS,  # the outbox relay (requests, config) and dead-letter replay (any)
    "tracking": (STATUS, MODELS),  # status, and model versions from the webhook and poller
    "workflow": (STATUS,),
    "serving": (STATUS,),
    "registry": (STATUS,),
    "versioning": (STATUS,),
    "github-sync": (STATUS,),
}

SERVICES = tuple(CONSUMES)

ROOT_COMMANDS = ("+ping", "+multi", "+exec", "+discard", "+script|load")
"""Keyless commands every service user may run: PING (health checks), MULTI/EXEC (heartbeats,
dead-lettering) and SCRIPT LOAD (redis-py loads the commit script after NOSCRIPT). Not CLIENT
SETINFO: Redis 7.0 does not know it (an ACL file naming it does not load), and redis-py ignores
its refusal on 7.2+."""

CONSUMER_COMMANDS = (
    "+xgroup|create",
    "+xreadgroup",
    "+xack",
    "+xautoclaim",
    "+xclaim",
    "+xpending",
    "+xinfo|groups",
)
CONFIG_COMMANDS = ("+xread", "+xrevrange")


@dataclass(frozen=True)
class Grant:
    """Commands allowed on keys (a selector); no keys means a keyless grant."""

    commands: tuple[str, ...]
    keys: tuple[str, ...] = ()
    why: str = ""


@dataclass
class User:
    name: str
    grants: list[Grant] = field(default_factory=list)

    def rule(self, password_hash: str | None) -> str:
        """The ``user`` line of the ACL file."""
        parts = ["user", self.name, "on" if password_hash else "off", "resetpass"]
        if password_hash:
            parts.append(f"#{password_hash}")
        parts += ["resetkeys", "resetchannels", "-@all"]
        for grant in self.grants:
            if not grant.keys:
                parts += grant.commands
        selectors: dict[tuple[str, ...], list[str]] = {}  # same keys: one selector
        for grant in self.grants:
            if grant.keys:
                commands = selectors.setdefault(grant.keys, [])
                commands += [c for c in grant.commands if c not in commands]
        for keys, commands in selectors.items():
            parts.append("(" + " ".join([*(f"~{key}" for key in keys), *commands]) + ")")
        return " ".join(parts)


def escape(text: str) -> str:
    """A literal in a Redis glob pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def consumer_grants(service: str, namespace: str) -> list[Grant]:
    """What every consumer of one stream needs (``llmops_shared.streams`` and the worker host)."""
    ns = escape(namespace)
    stream = CONSUMES[service]
    group = escape(service)
    own = f"{ns}{stream}"
    idem = f"{ns}llmops:idem:{group}:*"
    outputs = tuple(f"{ns}{s}" for s in PUBLISHES[service])
    return [
        Grant(CONSUMER_COMMANDS, (own,), f"consume {stream} in group {service}"),
        Grant(("+xadd",), (f"{own}.dlq",), "dead letters"),
        Grant(("+set", "+mget"), (idem,), "idempotency keys"),
        Grant(
            ("+hincrby", "+hset", "+hget", "+hdel", "+expire"),
            (f"{ns}llmops:attempts:{stream}:{group}",),
            "attempt log",
        ),
        Grant(
            ("+evalsha",),
            tuple(dict.fromkeys((own, idem, *outputs))),
            "the commit script (SET NX, XADD, XACK)",
        ),
        Grant(("+xadd",), outputs, "publish"),
        Grant(("+hset", "+pexpire", "+del"), (f"{ns}llmops:workers:{group}:*",), "heartbeat"),
        Grant(("+zadd", "+zremrangebyscore", "+zrem"), (f"{ns}llmops:workers",), "heartbeats"),
        Grant(CONFIG_COMMANDS, (f"{ns}{CONFIG}",), "integration flags"),
    ]


def inspection_grants(namespace: str) -> list[Grant]:
    """Dead-letter listing and replay, and the view of every stream, group and worker."""
    ns = escape(namespace)
    streams = tuple(f"{ns}{s}" for s in STREAMS)
    dead = tuple(f"{s}.dlq" for s in streams)
    marker = f"{ns}llmops:dlq-replayed:*"
    return [
        Grant(("+xinfo|groups", "+xlen", "+exists"), streams, "streams, groups, lag"),
        Grant(("+xrevrange", "+xrange", "+xlen", "+xdel"), dead, "dead letters"),
        Grant(("+eval",), (*dead, *streams, marker), "the replay script"),
        Grant(("+xadd",), streams, "replay"),
        Grant(("+get", "+set"), (marker,), "replay markers"),
        Grant(("+zrange",), (f"{ns}llmops:workers",), "heartbeat index"),
        Grant(("+hgetall", "+pttl"), (f"{ns}llmops:workers:*",), "heartbeats"),
    ]


def service_grants(service: str, namespace: str) -> list[Grant]:
    ns = escape(namespace)
    grants = [Grant(ROOT_COMMANDS, (), "keyless"), *consumer_grants(service, namespace)]
    if service == "tracking":
        grants += [
            Grant(
                ("+get", "+set", "+zadd", "+zrangebyscore", "+zremrangebyscore"),
                (f"{ns}tracking:model-versions:*",),
                "model-version poller watermark and published set",
            ),
            Grant(
                ("+exists", "+set"),
                (f"{ns}tracking:mlflow-webhook:delivery:*",),
                "webhook delivery ids",
            ),
        ]
    if service == "tracking":
        grants.append(
            Grant(
                ("+set", "+get", "+del", "+pexpire", "+evalsha"),
                (f"{ns}tracking:run-lock:*",),
                "per-job run locks (llmops_tracking.adapters.redis_locks; EVALSHA's scripts "
                "run GET, PEXPIRE and DEL)",
            )
        )
    if service == "serving":
        grants.append(
            Grant(
                ("+get", "+set"),
                (f"{ns}llmops:serving:tombstones:*",),
                "deleted endpoints (llmops_serving.tombstones)",
            )
        )
    if service == "workflow":
        grants += [
            Grant(("+unwatch",), (), "keyless"),
            Grant(
                ("+watch", "+get", "+mget", "+set", "+del", "+sadd", "+srem", "+smembers"),
                (f"{ns}llmops:workflow:*",),
                "the pipeline ledger (records and the watched set)",
            ),
        ]
    if service == "gateway":
        grants += inspection_grants(namespace)
        grants.append(
            Grant(("+info", "+wait"), (), "outbox relay: online replicas and WAIT for them")
        )
    return grants


def users(namespace: str = "", user_prefix: str = "") -> list[User]:
    """Every user of the platform, in a stable order."""
    found = [User(f"{user_prefix}{s}", service_grants(s, namespace)) for s in SERVICES]
    operator = [Grant(("+ping",), (), "keyless"), *inspection_grants(namespace)]
    found.append(User(f"{user_prefix}operator", operator))
    return found


def password_variable(user: str) -> str:
    """``REDIS_PASSWORD_GITHUB_SYNC`` for ``github-sync``."""
    return "REDIS_PASSWORD_" + user.upper().replace("-", "_")


def render(
    namespace: str = "",
    user_prefix: str = "",
    *,
    passwords: Mapping[str, str] | None = None,
    default_user: bool = True,
) -> str:
    """The ACL file; ``passwords=None`` renders the example (every user ``off``)."""
    lines = []  # an ACL file has no comments: every line must be a user
    if default_user:
        lines.append("user default on nopass resetkeys resetchannels -@all +ping")
    for user in users(namespace, user_prefix):
        digest = None
        if passwords is not None:
            secret = passwords[user.name]
            digest = hashlib.sha256(secret.encode()).hexdigest()
        lines.append(user.rule(digest))
    return "\n".join(lines) + "\n"


def read_passwords(
    names: Sequence[str], environ: Mapping[str, str], directory: Path | None
) -> dict[str, str]:
    """Each user's password from ``--password-dir/<user>`` or ``REDIS_PASSWORD_<USER>``."""
    found: dict[str, str] = {}
    missing = []
    for name in names:
        value = None
        if directory is not None and (directory / name).is_file():
            value = (directory / name).read_text().strip()
        value = value or environ.get(password_variable(name), "").strip()
        if not value:
            missing.append(f"{password_variable(name)} (or {directory or '<dir>'}/{name})")
        else:
            found[name] = value
    if missing:
        raise SystemExit("acl.py: no password for: " + ", ".join(missing))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="file to write (default: standard output)")
    parser.add_argument("--namespace", default="", help="the services' STREAM_NAMESPACE")
    parser.add_argument("--user-prefix", default="", help="prefix of every user name")
    parser.add_argument("--password-dir", type=Path, help="one file per user holding its password")
    parser.add_argument(
        "--example", action="store_true", help="no passwords: every user is off (the reference)"
    )
    parser.add_argument(
        "--no-default-user", action="store_true", help="leave the default user as it is"
    )
    parser.add_argument(
        "--mode",
        type=lambda text: int(text, 8),
        default=0o600,
        help="file mode of --out, octal (default 600; 644 when another user runs redis-server)",
    )
    args = parser.parse_args(argv)
    passwords = None
    if not args.example:
        names = [u.name for u in users(args.namespace, args.user_prefix)]
        passwords = read_passwords(names, os.environ, args.password_dir)
    text = render(
        args.namespace,
        args.user_prefix,
        passwords=passwords,
        default_user=not args.no_default_user,
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.chmod(args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
