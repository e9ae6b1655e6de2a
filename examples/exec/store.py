#!/usr/bin/env python3
"""store: a small key-value store that can fence writes by token.

One register per key and, per key, a high water mark: the largest token the
store has accepted for that key. With --fencing on a write is accepted iff its
token is at least the key's high water (an equal token is the same holder
writing again), so a holder that lost its lock and writes with an old token is
rejected once a newer holder has written. With --fencing off every write is
accepted: a late write with an old token overwrites a newer value, which is
the corruption a paused lock holder causes.

With --data-dir every accepted write is appended to store.jsonl (and replayed
on start), so a restarted store keeps its values and high water marks.

Protocol (TCP, one JSON object per line each way, one reply per request):

  {"op":"write","key":"k0","data":"w1-0","token":34,"from":"w1"}
      -> {"ok":true,"high_water":34}
       | {"ok":false,"error":"rejected","high_water":35}
  {"op":"read","key":"k0"}
      -> {"ok":true,"value":{"data":"w1-0","token":34,"from":"w1"}}
       | {"ok":true,"value":null}

"ok":false means the request certainly had no effect. Standard library only.
Logs go to stderr.
"""

import argparse
import asyncio
import json
import os

from lineproto import logger, serve

log = logger("store")


class State:
    """The registers, their high water marks, and the optional journal."""

    def __init__(self, fencing, data_dir):
        self.fencing = fencing
        self.values = {}  # key -> {"data", "token", "from"}
        self.high_water = {}  # key -> largest token accepted
        self.journal = None
        if data_dir:
            os.makedirs(data_dir, exist_ok=True)
            path = os.path.join(data_dir, "store.jsonl")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        if line.endswith("\n"):
                            self.apply(json.loads(line))
                log(f"recovered {len(self.values)} keys from {path}")
            self.journal = open(path, "a", encoding="utf-8")

    def apply(self, write):
        key = write["key"]
        self.values[key] = {k: write[k] for k in ("data", "token", "from")}
        self.high_water[key] = max(self.high_water.get(key, 0), write["token"])

    def write(self, key, data, token, sender):
        mark = self.high_water.get(key, 0)
        if self.fencing and token < mark:
            log(f"rejected {sender}'s write to {key} with token {token}: high water {mark}")
            return {"ok": False, "error": "rejected", "high_water": mark}
        write = {"key": key, "data": data, "token": token, "from": sender}
        if self.journal is not None:
            self.journal.write(json.dumps(write) + "\n")
            self.journal.flush()
        self.apply(write)
        return {"ok": True, "high_water": self.high_water[key]}

    def handle(self, request):
        op = request.get("op")
        key = request.get("key")
        if not isinstance(key, str):
            raise ValueError("key must be a string")
        if op == "write":
            data = request.get("data")
            token = request.get("token")
            if not isinstance(data, str):
                raise ValueError("data must be a string")
            if not isinstance(token, int) or isinstance(token, bool) or token < 0:
                raise ValueError("token must be an unsigned integer")
            return self.write(key, data, token, str(request.get("from", "")))
        if op == "read":
            return {"ok": True, "value": self.values.get(key)}
        raise ValueError(f"unknown op {op!r}")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7400)
    parser.add_argument("--fencing", choices=["on", "off"], required=True)
    parser.add_argument("--data-dir", help="journal accepted writes here")
    args = parser.parse_args()
    state = State(args.fencing == "on", args.data_dir)
    about = f"fencing {args.fencing}, data dir {args.data_dir or '(none)'}"
    await serve(state.handle, log, args.host, args.port, about)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
