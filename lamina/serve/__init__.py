"""Serve a model over HTTP: a REST API and a web page (``lamina serve MODEL_DIR``).

>>> serve("runs/breast_cancer", port=8000)             # doctest: +SKIP
>>> app = create_app(lamina.load("runs/breast_cancer"))  # doctest: +SKIP   (for uvicorn or a test client)
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from lamina.errors import LaminaError

__all__ = ["create_app", "load_app", "serve", "Limits"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "Limits"):
        from lamina.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'lamina.serve' has no attribute {name!r}")


def load_app(model_dir: str | os.PathLike, runtime: str = "torch", limits: Any = None,
             threads: int | None = None) -> Any:
    """Load the model once and build its app; a bad model directory raises ``LaminaError``.

    ``threads``: the runtime's threads per prediction (PyTorch and ONNX Runtime); default: theirs (the core count).
    One thread gives the steadiest latency for small table models when requests arrive concurrently."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI's form and upload parser)
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise LaminaError(f"serving needs {e.name}: pip install 'lamina[serve]'") from None
    from lamina.export import load
    from lamina.serve.app import create_app

    if threads is not None:
        if threads < 1:
            raise LaminaError(f"threads {threads}: use 1 or more")
        import torch

        torch.set_num_threads(threads)
    return create_app(load(model_dir, runtime, threads), runtime, limits)


def check_port(host: str, port: int) -> None:
    """Fail early, with a clear message, when the address cannot be bound."""
    if not 0 <= port <= 65535:
        raise LaminaError(f"port {port}: use a number from 1 to 65535")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise LaminaError(f"{host}:{port} is already in use; pick another port with --port") from None
        raise LaminaError(f"cannot listen on {host}:{port} ({e.strerror or e}); check --host and --port") from None


def serve(model_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, runtime: str = "torch",
          limits: Any = None, log_level: str = "info", threads: int | None = None) -> None:
    """Load the model, then serve it until interrupted. Binds to the loopback interface unless told otherwise.

    A bad model directory, a missing ``model.onnx`` for ``runtime="onnx"`` or a busy port raise ``LaminaError``
    before anything listens (the CLI turns it into one line and exit code 2).
    """
    import uvicorn

    app = load_app(model_dir, runtime, limits, threads)
    check_port(host, port)
    import logging

    logging.getLogger("lamina").info("serving %s (%s runtime) at http://%s:%d/ — API docs at /docs; Ctrl-C stops",
                                     model_dir, runtime, host if ":" not in host else f"[{host}]", port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
