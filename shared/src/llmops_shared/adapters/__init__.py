"""Adapters more than one service needs; each imports its client library only when imported.

Install the matching extra: ``llmops-shared[kube]`` for :mod:`.kube`.
"""
