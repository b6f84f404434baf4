"""Raw-socket SSE clients for the stream tests: many streams cost one socket each, no thread."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import httpx


def open_stream(url: str, path: str, *, rcvbuf: int | None = None) -> socket.socket:
    """Send `GET path` and return the socket once the stream said `: connected`."""
    parts = urlsplit(url)
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.settimeout(10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    seen = b""
    while b": connected" not in seen:
        chunk = sock.recv(4096)
        assert chunk, f"stream closed before it connected: {seen!r}"
        seen += chunk
    assert seen.startswith(b"HTTP/1.1 200"), seen[:200]
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 30) -> bytes:
    """Everything the server sends until it ends the response (chunked terminator)."""
    sock.settimeout(timeout)
    seen = b""
    deadline = time.monotonic() + timeout
    while not seen.endswith(b"\r\n0\r\n\r\n") and time.monotonic() < deadline:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        seen += chunk
    return seen


def metric(url: str, name: str) -> float:
    """One unlabelled sample from /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))
