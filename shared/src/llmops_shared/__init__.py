"""Code every LLM-Ops service shares: the event contract, the spec rules and the streams runtime.

Nothing here opens a connection or reads settings at import time; services build their clients
in their own ``app.py``.
"""

__version__ = "0.1.0"
