"""The Flask app served on a real local port (for browsers and HTTP clients)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import port_for
from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def served(app: Flask, *, tls: bool = False) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` while the app answers there in a background thread;
    with ``tls``, ``https://`` with a throw-away self-signed certificate."""
    port = port_for.select_random()
    server = make_server(
        "127.0.0.1", port, app, threaded=True, ssl_context="adhoc" if tls else None
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join()
