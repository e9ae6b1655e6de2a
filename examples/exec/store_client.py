#!/usr/bin/env python3
"""store_client: the exec adapter that lets leasehold write to store.py.

It speaks leasehold's exec storage protocol (docs/protocol.md, "exec: bring
your own storage"): one JSON request per line on stdin, one JSON reply per
line on stdout, logs on stderr. Each key lives on one of init's
storage_nodes, chosen by crc32(key) mod n; the adapter keeps one TCP
connection per node open between ops and maps the outcome:

  store accepted the write / answered the read   -> ok
  store rejected the write (fencing)             -> fail, with its high water
  cannot connect (the request was never sent)    -> fail
  timeout or broken connection after sending     -> info

It never retries: a retried write could be applied twice. It exits when stdin
reaches EOF, i.e. when its worker is gone. Standard library only.
"""

import json
import sys
import zlib

from lineproto import Connection, logger, parse_addr, reply

log = logger("store_client")



def main():
    node = None
    nodes = []
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
            addrs = request.get("storage_nodes") or []
            # Give up on the store before the worker gives up on us, so that
            # we answer info ourselves instead of being killed.
            worker_ms = request.get("timeout_ms") or 1000
            timeout = max(worker_ms * 0.8, 10) / 1000.0
            if not addrs:
                reply({"id": rid, "type": "fail", "error": "no storage_nodes"})
                continue
            try:
                parsed = [parse_addr(a, "storage node") for a in addrs]
            except ValueError as e:
                reply({"id": rid, "type": "fail", "error": str(e)})
                continue
            for n in nodes:
                n.close()
            nodes = [Connection(a, timeout, "store") for a in parsed]
            log(f"{node}: using store at {', '.join(addrs)}, timeout {timeout * 1000:.0f} ms")
            reply({"id": rid, "type": "ok"})
            continue
        if not nodes:
            reply({"id": rid, "type": "fail", "error": "not initialised"})
            continue
        key = request.get("key")
        if not isinstance(key, str):
            reply({"id": rid, "type": "fail", "error": "no key"})
            continue
        target = nodes[zlib.crc32(key.encode()) % len(nodes)]
        if op == "write":
            forward = {
                "op": "write",
                "key": key,
                "data": request.get("data"),
                "token": request.get("token"),
                "from": request.get("from", node),
            }
        elif op == "read":
            forward = {"op": "read", "key": key}
        else:
            reply({"id": rid, "type": "fail", "error": f"unknown op {op!r}"})
            continue
        outcome, value = target.call(forward)
        if outcome == "ok":
            message = {"id": rid, "type": "ok"}
            if op == "write":
                message["high_water"] = value.get("high_water")
            elif value.get("value") is not None:
                message.update(value["value"])
            reply(message)
        elif outcome == "fail" and isinstance(value, dict):
            message = {"id": rid, "type": "fail", "error": str(value.get("error", "refused"))}
            if isinstance(value.get("high_water"), int):
                message["high_water"] = value["high_water"]
            reply(message)
        else:
            if outcome == "info":
                log(f"{op} {key}: unknown outcome: {value}")
            reply({"id": rid, "type": outcome, "error": value})
    for n in nodes:
        n.close()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
