"""One TLS context for every HTTP client the workload opens."""
from __future__ import annotations

import functools
import ssl

__all__ = ["tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Built once: building one loads the CA bundle (~20 ms, far more on a loaded machine), and a scenario
    starting a dozen consumers at once must not have them connect late for it."""
    return ssl.create_default_context()
