"""In-memory fakes of the workers' ports, for unit tests of their handlers.

Each module fakes the ports of one worker (``tracking``, ``registry``, ``versioning``,
``github_sync``); :mod:`support.fakes.sink` is the status sink they share. A fake implements the
port's real interface (mypy checks it against the protocol), keeps its state in dicts, records
the calls it got and raises what a test tells it to. The wire-level test servers
(``support.mlflow_server``, ``support.github_server``...) stay for the adapters' contract tests.
"""
