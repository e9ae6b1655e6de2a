"""lineproto: what the example servers and adapters of examples/exec/ share.

The servers (reflock.py, store.py) answer one JSON object per line over TCP;
the adapters (reflock_client.py, store_client.py) forward each op to them
over one connection kept open between ops, and speak leasehold's exec
protocol on stdin and stdout. Standard library only; imported from the
folder of the script that runs.
"""

import asyncio
import json
import select
import socket
import sys
import time


def logger(name):
    """A function that writes `name: message` lines to stderr."""

    def log(msg):
        print(f"{name}: {msg}", file=sys.stderr, flush=True)

    return log


def reply(message):
    """One reply line on stdout, to the worker."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def parse_addr(addr, what):
    """`host:port` (or `[v6]:port`) as a (host, port) pair."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bad {what} address {addr!r}")
    return host.strip("[]"), int(port)


class Connection:
    """One server, one connection at a time, one JSON line each way per call."""

    def __init__(self, addr, timeout, peer):
        self.addr = addr
        self.timeout = timeout
        self.peer = peer
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buf = b""

    def usable(self):
        """Whether the open connection is still open at the far end."""
        if self.sock is None:
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return True
        # Readable with no request outstanding: EOF or garbage, either way stale.
        self.close()
        return False

    def call(self, request):
        """(outcome, value): ('ok', reply), ('fail', reply) when the server
        said no, ('fail', error) when nothing was sent, ('info', error) when
        the request may have been applied. Never retries."""
        deadline = time.monotonic() + self.timeout
        if not self.usable():
            try:
                self.sock = socket.create_connection(self.addr, timeout=self.timeout / 2)
            except OSError as e:
                self.sock = None
                return "fail", f"cannot connect to {self.addr[0]}:{self.addr[1]}: {e}"
        try:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            self.sock.sendall((json.dumps(request) + "\n").encode())
            while b"\n" not in self.buf:
                self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"{self.peer} closed the connection")
                self.buf += chunk
        except socket.timeout:
            self.close()
            return "info", f"timeout after {self.timeout * 1000:.0f} ms"
        except OSError as e:
            self.close()
            return "info", f"connection broken: {e}"
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            answer = json.loads(line)
        except ValueError:
            self.close()
            return "info", f"unreadable reply from {self.peer}: {line[:200]!r}"
        if answer.get("ok") is True:
            return "ok", answer
        return "fail", answer


async def serve_connection(handle, log, reader, writer):
    """Answers each request line of one client with `handle(request)`; a
    line that is not a JSON object is answered with an error."""
    peer = writer.get_extra_info("peername")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not a JSON object")
                answer = handle(request)
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                answer = {"ok": False, "error": f"bad request: {e}"}
            writer.write((json.dumps(answer) + "\n").encode())
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError) as e:
        log(f"connection from {peer} broken: {e}")
    finally:
        writer.close()


async def serve(handle, log, host, port, about):
    """Serves `handle` on host:port until killed, after logging where it
    listens and `about` (the server's settings)."""
    server = await asyncio.start_server(
        lambda r, w: serve_connection(handle, log, r, w), host, port
    )
    where = ", ".join(str(s.getsockname()) for s in server.sockets)
    log(f"listening on {where}, {about}")
    async with server:
        await server.serve_forever()
