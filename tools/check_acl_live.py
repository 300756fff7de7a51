#!/usr/bin/env python3
"""
tools/check_acl_live.py -- re-check the "live" tables of tests/unit/test_acl.c
against a real redis-server 7.0.

    tests/unit/test_acl.c (live_cases, glob_cases) --> this script --> redis-server
        --> mismatches printed, exit 1 if any

  * live_cases { rules, command, verdict }: ACL SETUSER t reset on nopass
    <rules>, AUTH t x on a new connection, then the command; the reply is
    classified as ACL_DENIED_CMD / _KEY / _CHANNEL (its NOPERM text) or
    ACL_OK (anything else: the ACL let it through);
  * glob_cases { pattern, string, match }: FLUSHALL, SET <string>, KEYS
    <pattern> (Redis's stringmatchlen; the pattern "*" alone is avoided, KEYS
    short-cuts it).

It runs FLUSHALL and ACL SETUSER/DELUSER t: use a throwaway server.

Usage:
    python3 tools/check_acl_live.py --start --port 9601   # start and stop one
    python3 tools/check_acl_live.py --port 9601           # server already running
"""

import argparse
import codecs
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_command_table import GenError, start_server, stop_server  # noqa: E402


class Conn:
    """A bytes-exact RESP2 connection; errors come back as ('-', text)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ("-", rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise GenError("bad reply %r" % line)


LIT = r'"(?:[^"\\]|\\.)*"'


def c_string(text):
    """Adjacent C string literals -> bytes."""
    return b"".join(codecs.escape_decode(m[1:-1].encode())[0] for m in re.findall(LIT, text))


def table(src, name):
    body = re.search(r"\} %s\[\] = \{\n(.*?)\n\};" % name, src, re.S)
    if body is None:
        raise GenError("no table %s in test_acl.c" % name)
    rows = []
    for m in re.finditer(r"\{ ((?:%s\s*)+), ((?:%s\s*)+), (\w+) \}," % (LIT, LIT), body.group(1)):
        rows.append((c_string(m.group(1)), c_string(m.group(2)), m.group(3)))
    return rows


def verdict(reply):
    if isinstance(reply, tuple) and reply[1].startswith("NOPERM"):
        text = reply[1]
        if "one of the keys" in text:
            return "ACL_DENIED_KEY"
        if "one of the channels" in text:
            return "ACL_DENIED_CHANNEL"
        return "ACL_DENIED_CMD"
    return "ACL_OK"


def check(port, src):
    bad = 0
    admin = Conn(port)
    for rules, cmd, want in table(src, "live_cases"):
        admin.call("ACL", "DELUSER", "t")
        r = admin.call("ACL", "SETUSER", "t", "reset", "on", "nopass", *rules.split(b" "))
        if r != "OK":
            print("setuser %r: %r" % (rules, r))
            bad += 1
            continue
        c = Conn(port)
        c.call("AUTH", "t", "x")
        got = verdict(c.call(*cmd.split(b" ")))
        c.close()
        admin.call("FLUSHALL")
        if got != want:
            print("[%s] %s: Redis %s, table %s" % (rules.decode(), cmd.decode(), got, want))
            bad += 1
    for pattern, string, want in table(src, "glob_cases"):
        admin.call("FLUSHALL")
        admin.call("SET", string, "1")
        keys = admin.call("KEYS", pattern)
        got = "1" if string in keys else "0"
        if got != want:
            print("glob %r ~ %r: Redis %s, table %s" % (pattern, string, got, want))
            bad += 1
    admin.call("FLUSHALL")
    admin.call("ACL", "DELUSER", "t")
    admin.close()
    return bad


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Check test_acl.c's live tables against redis-server 7.0")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--start", action="store_true", help="start a throwaway redis-server")
    ap.add_argument("--server", default="redis-server")
    ap.add_argument("--test", default=os.path.join(here, "..", "tests", "unit", "test_acl.c"))
    args = ap.parse_args()
    with open(args.test) as f:
        src = f.read()
    proc = None
    try:
        if args.start:
            proc = start_server(args.server, "127.0.0.1", args.port)
        bad = check(args.port, src)
    except (GenError, OSError) as e:
        print("check_acl_live: %s" % e, file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop_server(proc)
    n = len(table(src, "live_cases")) + len(table(src, "glob_cases"))
    print("%d cases, %d mismatches" % (n, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
