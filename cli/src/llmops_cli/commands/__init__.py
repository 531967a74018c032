"""The ``llmops`` command groups: ``up``, ``redis``, ``streams``, ``dlq``, ``train``,
``models``, ``datasets`` and ``integrations`` (assembled in :mod:`llmops_cli.app`)."""
