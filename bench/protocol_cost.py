"""Server CPU per request for each HTTP protocol: `python -m bench.protocol_cost [N]`.

Serves the real app with uvicorn's httptools protocol, Jobbie's limited subclass of it
(server/protocol.py) and uvicorn's h11 protocol, one after the other, and sends N keep-alive
requests (GET /healthz and POST /api/v1/enqueue, alternating) from one client. The figure is
the server process's CPU time (user + system, from /proc) divided by N, so the client's share
of the machine does not count. Three rounds each; the median is printed.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

_SERVER = """
import sys, uvicorn
from pathlib import Path
from jobbie.config import Settings
from jobbie.server.app import create_app
from jobbie.server.protocol import ConnectionLimits, protocol_class
kind, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
settings = Settings(port=port, data_dir=Path(data), access_log=False, durable=False)
limits = ConnectionLimits(4096, 10.0, 60.0, 65536, 100)
http = {"httptools": "httptools", "h11": "h11", "limited": protocol_class(limits)}[kind]
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, http=http, log_level="warning",
            access_log=False, lifespan="on")
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request(sock: socket.socket, raw: bytes) -> None:
    sock.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)


def measure(kind: str, n: int) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen([sys.executable, "-c", _SERVER, kind, str(port), data])
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            body = b'{"queue": "bench", "payload": {"n": 1}}'
            get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            post = (
                b"POST /api/v1/enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            ) % (len(body), body)
            with sock:
                for _ in range(200):  # warm up
                    _request(sock, get)
                before = _cpu_seconds(proc.pid)
                for i in range(n):
                    _request(sock, get if i % 2 else post)
                return (_cpu_seconds(proc.pid) - before) / n
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    for kind in ("httptools", "limited", "h11"):
        runs = [measure(kind, n) for _ in range(3)]
        print(f"{kind:10s} {statistics.median(runs) * 1e6:7.1f} us CPU/request (server)")


if __name__ == "__main__":
    main()
