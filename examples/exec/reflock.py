#!/usr/bin/env python3
"""reflock: a small lock service with leases and fencing tokens.

One server, many named locks. Each lock is free or held by one client under a
lease measured on this server's monotonic clock, with a fencing token taken
from one counter that only grows. With --data-dir the counter (and the longest
lease ever granted) is written to disk, fsynced, before a grant is answered, so
a restarted server never hands out a token twice; after such a restart it
grants nothing for as long as the longest lease, since leases granted before
the restart may still be running.

Protocol (TCP, one JSON object per line each way, one reply per request):

  {"op":"acquire","lock":"L","client":"w1","ttl_ms":1000}
      -> {"ok":true,"token":7,"lease_ms":1000}
       | {"ok":false,"error":"busy (holder w2)"}
  {"op":"renew","lock":"L","client":"w1","token":7,"ttl_ms":1000}
      -> {"ok":true,"token":7,"lease_ms":1000} | {"ok":false,"error":"lease lost"}
  {"op":"release","lock":"L","client":"w1","token":7}
      -> {"ok":true} | {"ok":false,"error":"not held"}

"ok":false means the request certainly had no effect. A request the server
cannot read gets {"ok":false,"error":"bad request: ..."}.

Standard library only. Logs go to stderr.
"""

import argparse
import asyncio
import json
import os
import time

from lineproto import logger, serve

log = logger("reflock")


class State:
    """The locks, the token counter and its persistence."""

    def __init__(self, data_dir):
        self.locks = {}  # name -> (client, token, deadline on time.monotonic())
        self.last_token = 0
        self.max_ttl_ms = 0
        self.path = None
        self.grants_from = time.monotonic()
        if data_dir:
            os.makedirs(data_dir, exist_ok=True)
            self.path = os.path.join(data_dir, "reflock.json")
            if os.path.exists(self.path):
                with open(self.path, encoding="utf-8") as f:
                    saved = json.load(f)
                self.last_token = int(saved["last_token"])
                self.max_ttl_ms = int(saved["max_ttl_ms"])
                # Leases granted before the restart may still run: wait them out.
                self.grants_from = time.monotonic() + self.max_ttl_ms / 1000.0
                log(
                    f"recovered: last token {self.last_token}, "
                    f"no grants for {self.max_ttl_ms} ms"
                )

    def persist(self, last_token, max_ttl_ms):
        if self.path is None:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"last_token": last_token, "max_ttl_ms": max_ttl_ms}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(os.path.dirname(self.path), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def held(self, lock, now):
        """The live holder of lock, or None."""
        entry = self.locks.get(lock)
        if entry is not None and entry[2] <= now:
            del self.locks[lock]
            return None
        return entry

    def acquire(self, lock, client, ttl_ms):
        now = time.monotonic()
        if now < self.grants_from:
            left = int((self.grants_from - now) * 1000) + 1
            return {"ok": False, "error": f"recovering ({left} ms left)"}
        holder = self.held(lock, now)
        if holder is not None:
            return {"ok": False, "error": f"busy (holder {holder[0]})"}
        token = self.last_token + 1
        max_ttl = max(self.max_ttl_ms, ttl_ms)
        try:
            self.persist(token, max_ttl)
        except OSError as e:
            log(f"cannot persist token {token}: {e}")
            return {"ok": False, "error": f"cannot persist: {e}"}
        self.last_token, self.max_ttl_ms = token, max_ttl
        self.locks[lock] = (client, token, now + ttl_ms / 1000.0)
        return {"ok": True, "token": token, "lease_ms": ttl_ms}

    def renew(self, lock, client, token, ttl_ms):
        now = time.monotonic()
        holder = self.held(lock, now)
        if holder is None or holder[1] != token:
            return {"ok": False, "error": "lease lost"}
        if ttl_ms > self.max_ttl_ms:
            try:
                self.persist(self.last_token, ttl_ms)
            except OSError as e:
                return {"ok": False, "error": f"cannot persist: {e}"}
            self.max_ttl_ms = ttl_ms
        self.locks[lock] = (holder[0], token, now + ttl_ms / 1000.0)
        return {"ok": True, "token": token, "lease_ms": ttl_ms}

    def release(self, lock, client, token):
        holder = self.held(lock, time.monotonic())
        if holder is None or holder[1] != token:
            return {"ok": False, "error": "not held"}
        del self.locks[lock]
        return {"ok": True}

    def handle(self, request):
        op = request.get("op")
        lock = request.get("lock")
        client = request.get("client", "")
        if not isinstance(lock, str) or not lock:
            raise ValueError("lock must be a non-empty string")
        if op == "acquire":
            return self.acquire(lock, client, positive(request, "ttl_ms"))
        if op == "renew":
            return self.renew(
                lock, client, positive(request, "token"), positive(request, "ttl_ms")
            )
        if op == "release":
            return self.release(lock, client, positive(request, "token"))
        raise ValueError(f"unknown op {op!r}")


def positive(request, field):
    value = request.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{field} must be a positive integer")
    return value


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7300)
    parser.add_argument("--data-dir", help="persist fencing tokens here")
    args = parser.parse_args()
    state = State(args.data_dir)
    about = f"data dir {args.data_dir or '(none)'}"
    await serve(state.handle, log, args.host, args.port, about)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
