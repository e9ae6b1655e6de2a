#!/usr/bin/env python3
"""reflock_client: the exec adapter that lets a leasehold worker use reflock.

It speaks leasehold's exec protocol (docs/protocol.md, "exec: bring your own
lock"): one JSON request per line on stdin, one JSON reply per line on stdout,
logs on stderr. It forwards each op to the reflock server named first in
init's lock_nodes, over one TCP connection kept open between ops, and maps
the outcome:

  server said ok                               -> ok
  server said no (busy, lease lost, not held)  -> fail
  cannot connect (the request was never sent)  -> fail
  timeout or broken connection after sending   -> info

It never retries: a retried request could be applied twice. It exits when
stdin reaches EOF, i.e. when its worker is gone. Standard library only.
"""

import json
import select
import socket
import sys
import time


def log(msg):
    print(f"reflock_client: {msg}", file=sys.stderr, flush=True)


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def parse_addr(addr):
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bad lock node address {addr!r}")
    return host.strip("[]"), int(port)


class Server:
    """One reflock server, one connection at a time."""

    def __init__(self, addr, timeout):
        self.addr = addr
        self.timeout = timeout
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
        """(outcome, value): ('ok', reply) / ('fail', error) / ('info', error)."""
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
                    raise ConnectionError("server closed the connection")
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
            return "info", f"unreadable reply from server: {line[:200]!r}"
        if answer.get("ok") is True:
            return "ok", answer
        return "fail", str(answer.get("error", "refused"))


def main():
    node = None
    server = None
    for line in iter(sys.stdin.readline, ""):
        try:
            request = json.loads(line)
            rid = request["id"]
            op = request["op"]
        except (ValueError, KeyError, TypeError) as e:
            log(f"ignoring unreadable request {line.strip()[:200]!r}: {e}")
            continue
        if op == "init":
            node = request.get("node", "?")
            nodes = request.get("lock_nodes") or []
            # Give up on the server before the worker gives up on us, so that
            # we answer info ourselves instead of being killed.
            worker_ms = request.get("timeout_ms") or 1000
            timeout = max(worker_ms * 0.8, 10) / 1000.0
            if not nodes:
                reply({"id": rid, "type": "fail", "error": "no lock_nodes"})
                continue
            try:
                addr = parse_addr(nodes[0])
            except ValueError as e:
                reply({"id": rid, "type": "fail", "error": str(e)})
                continue
            if len(nodes) > 1:
                log(f"reflock is one server; using {nodes[0]}, ignoring {nodes[1:]}")
            if server is not None:
                server.close()
            server = Server(addr, timeout)
            log(f"{node}: using reflock at {nodes[0]}, timeout {timeout * 1000:.0f} ms")
            reply({"id": rid, "type": "ok"})
            continue
        if server is None:
            reply({"id": rid, "type": "fail", "error": "not initialised"})
            continue
        if op == "acquire":
            forward = {
                "op": "acquire",
                "lock": request.get("lock"),
                "client": request.get("client", node),
                "ttl_ms": request.get("ttl_ms"),
            }
        elif op == "renew":
            forward = {
                "op": "renew",
                "lock": request.get("lock"),
                "client": node,
                "token": request.get("token"),
                "ttl_ms": request.get("ttl_ms"),
            }
        elif op == "release":
            forward = {
                "op": "release",
                "lock": request.get("lock"),
                "client": node,
                "token": request.get("token"),
            }
        else:
            reply({"id": rid, "type": "fail", "error": f"unknown op {op!r}"})
            continue
        outcome, value = server.call(forward)
        if outcome == "ok":
            message = {"id": rid, "type": "ok"}
            if op != "release":
                message["token"] = value["token"]
                message["lease_ms"] = value["lease_ms"]
            reply(message)
        else:
            if outcome == "info":
                log(f"{op} {forward.get('lock')}: unknown outcome: {value}")
            reply({"id": rid, "type": outcome, "error": value})
    if server is not None:
        server.close()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
