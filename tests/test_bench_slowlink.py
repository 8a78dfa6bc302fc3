"""The bench's latency link (bench/slowlink.py) must pass every byte on, in order, both ways, and
close the far side when one side closes: a bench run through it measures the daemon against a
server further away, not a link that loses or reorders data."""

import os
import socket
import threading

from bench import slowlink
from tests.servers.system import LOOPBACK


class _Echo:
    """Echoes what each connection sends; notes each connection that reached its end."""

    def __init__(self):
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = self.listener.getsockname()[1]
        self.ended = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
        self.ended.set()


def _read(sock, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        assert chunk, f"the link closed after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


def test_every_byte_goes_through_in_order_both_ways_and_a_close_is_passed_on():
    echo = _Echo()
    with slowlink.running(echo.port, 5) as port:  # raises unless the link also ends cleanly
        sent = [os.urandom(size) for size in (1, 100, 70_000, 3, 250_000)]
        with socket.create_connection((LOOPBACK, port), timeout=10) as client:
            for chunk in sent:
                client.sendall(chunk)
            assert _read(client, sum(map(len, sent))) == b"".join(sent)
        assert echo.ended.wait(10), "the server never saw the client close"
