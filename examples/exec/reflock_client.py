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
import sys

from lineproto import Connection, logger, parse_addr, reply

log = logger("reflock_client")



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
                addr = parse_addr(nodes[0], "lock node")
            except ValueError as e:
                reply({"id": rid, "type": "fail", "error": str(e)})
                continue
            if len(nodes) > 1:
                log(f"reflock is one server; using {nodes[0]}, ignoring {nodes[1:]}")
            if server is not None:
                server.close()
            server = Connection(addr, timeout, "server")
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
        if outcome == "fail" and isinstance(value, dict):
            value = str(value.get("error", "refused"))
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
