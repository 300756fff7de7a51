#!/usr/bin/env python3
"""
tools/gen_command_table.py -- generate protocol/command_table.c.

    redis-server 7.0 --COMMAND INFO--> this script (+ PROXY_FLAGS, KEYSPEC_OVERRIDES)
        --> protocol/command_table.c --> protocol/command.c (cmd_lookup, cmd_keys)

Reads the command table of a running redis-server 7.0 (`COMMAND INFO`, spoken
in RESP2 over a plain socket, stdlib only) and writes the static tables of
struct cmd / struct cmd_keyspec declared in protocol/command.h:

  * top-level commands and each container's subcommands sorted by name (byte
    order of the lower-case name), which cmd_lookup()'s binary search relies on;
    subcommand names lose their "parent|" prefix;
  * Redis flags mapped to CMD_* (write, readonly, admin, pubsub, noscript,
    blocking, fast, no_mandatory_keys, movablekeys, denyoom);
  * key specs from COMMAND INFO's index 8 (begin_search index|keyword,
    find_keys range|keynum, flags RO/RW/OW/RM/INCOMPLETE); specs flagged
    not_key (sharded pub/sub channels) are dropped, as Redis itself skips them
    when it extracts keys;
  * the proxy's own flags (CMD_PROXY_*) from the reviewed list PROXY_FLAGS
    and its per-command operations (CMD_OP_*) from PROXY_OPS
    below, plus a few key-spec overrides (KEYSPEC_OVERRIDES) for specs Redis
    declares "unknown".
  * for the proxy's ACLs (see "ACL section" below): each command's ACL
    categories, its no_auth flag and the key specs' logical operation flags;
    the category list itself (ACL CAT) goes to protocol/command_cat.h.

Usage:
    python3 tools/gen_command_table.py --port 7801            # server already running
    python3 tools/gen_command_table.py --start --port 7801    # start a throwaway one
    [--host 127.0.0.1] [--out protocol/command_table.c] [--server redis-server]

The script fails (exit 1) when the server is not 7.x, when an override names a
command the server does not have (typo or a removed command), or when a key
spec is "unknown" and no override says what to do with it.
"""

import argparse
import os
import socket
import subprocess
import sys
import time

# --------------------------------------------------------------------------
# Reviewed override list: the proxy's own flags.
# Names are lower case; "parent|sub" names a subcommand; "parent|*" means the
# container and all its subcommands.
# --------------------------------------------------------------------------

# Changes a server (config, persistence, replication, cluster state, other
# clients): refused unless allow-admin-commands.
DENY = [
    "shutdown", "debug", "config|set", "config|rewrite", "config|resetstat",
    "replicaof", "slaveof", "failover", "save", "bgsave", "bgrewriteaof",
    "module|*",
    "acl|setuser", "acl|deluser", "acl|load", "acl|save",
    "cluster|addslots", "cluster|addslotsrange", "cluster|delslots",
    "cluster|delslotsrange", "cluster|failover", "cluster|forget",
    "cluster|meet", "cluster|replicate", "cluster|reset", "cluster|setslot",
    "cluster|flushslots", "cluster|set-config-epoch", "cluster|bumpepoch",
    "cluster|saveconfig",
    "monitor", "client|kill", "client|pause", "client|unpause",
    "sync", "psync", "replconf",
]

# Creates per-connection state on the server: the client gets its own server
# connection. Everything Redis flags "blocking" is added automatically (and
# WAIT, see EXTRA_BLOCKING).
PIN = [
    "multi", "watch", "select",
    "client|no-evict", "readonly", "readwrite",
    "subscribe", "psubscribe", "ssubscribe",
]

TXN = ["multi", "exec", "discard", "watch", "unwatch"]

# The connection becomes a push stream.
SUBSCRIBE = ["subscribe", "psubscribe", "ssubscribe", "monitor"]

# Answered by the proxy itself.
# AUTH and ACL WHOAMI / LIST / USERS / GETUSER are the proxy's: it has its
# own users (proxy/auth.c) and shares its connections, which carry the
# proxy's identity. The CLIENT
# subcommands about the client's own session (its id, name, tracking, reply
# mode) and RESET are the proxy's too: the client owns no Redis connection
# (proxy/tracking.c is the tracking server).
LOCAL = ["ping", "echo", "quit", "hello", "reset", "auth", "acl|whoami", "acl|list", "acl|users", "acl|getuser",
         "client|id", "client|info", "client|getname", "client|setname",
         "client|tracking", "client|caching", "client|trackinginfo",
         "client|getredir", "client|reply"]

# May touch keys the arguments do not name (or keys of another database):
# whole-keyspace commands, scripts and functions (their keys are declared but
# not enforced), commands moving keys across databases, and the dataset
# replacing admin commands. The *_RO script variants only read: not here.
# Commands with an INCOMPLETE key spec are added automatically.
FLUSH = [
    "flushall", "flushdb", "swapdb",
    "eval", "evalsha", "fcall",
    "move", "copy",
    "debug", "replicaof", "slaveof",
]

# Blocking commands Redis 7.0 does not flag "blocking".
EXTRA_BLOCKING = ["wait"]

# What the proxy does with a command beyond its flags: one operation per
# command (enum cmd_op in protocol/command.h), so that the router and the
# local answers switch on data instead of comparing names.
PROXY_OPS = {
    "ping": "CMD_OP_PING",
    "echo": "CMD_OP_ECHO",
    "quit": "CMD_OP_QUIT",
    "hello": "CMD_OP_HELLO",
    "auth": "CMD_OP_AUTH",
    "acl|whoami": "CMD_OP_ACL_WHOAMI",
    "acl|list": "CMD_OP_ACL_LIST",
    "acl|users": "CMD_OP_ACL_USERS",
    "acl|getuser": "CMD_OP_ACL_GETUSER",
    "multi": "CMD_OP_MULTI",
    "exec": "CMD_OP_EXEC",
    "discard": "CMD_OP_DISCARD",
    "watch": "CMD_OP_WATCH",
    "unwatch": "CMD_OP_UNWATCH",
    "select": "CMD_OP_SELECT",
    "reset": "CMD_OP_RESET",
    "client|reply": "CMD_OP_CLIENT_REPLY",
    "xread": "CMD_OP_BLOCK_OPTION",
    "xreadgroup": "CMD_OP_BLOCK_OPTION",
    "subscribe": "CMD_OP_SUBSCRIBE",
    "psubscribe": "CMD_OP_SUBSCRIBE",
    "ssubscribe": "CMD_OP_SUBSCRIBE",
    "client|id": "CMD_OP_CLIENT_ID",
    "client|info": "CMD_OP_CLIENT_INFO",
    "client|getname": "CMD_OP_CLIENT_GETNAME",
    "client|setname": "CMD_OP_CLIENT_SETNAME",
    "client|tracking": "CMD_OP_CLIENT_TRACKING",
    "client|caching": "CMD_OP_CLIENT_CACHING",
    "client|trackinginfo": "CMD_OP_CLIENT_TRACKINGINFO",
    "client|getredir": "CMD_OP_CLIENT_GETREDIR",
    "unsubscribe": "CMD_OP_UNSUBSCRIBE",
    "punsubscribe": "CMD_OP_UNSUBSCRIBE",
    "sunsubscribe": "CMD_OP_UNSUBSCRIBE",
    "mget": "CMD_OP_MGET",
}

# What the proxy does with a command in front of a Redis Cluster, beyond
# routing it by its keys' slot (enum cmd_cluster in protocol/command.h;
# proxy/fanout.c does the work). SPLIT_*: keys over several slots are split
# into one call per slot, sent at once, and merged; ALL_*: a keyless command
# goes to every primary and the replies are merged; SCAN walks the primaries
# one after the other; CHANNEL routes by the slot of its channel (argv[1]).
# Atomic multi-key commands (MSETNX, RENAME, SMOVE, SUNIONSTORE...) are not
# here: they keep CROSSSLOT, as Redis Cluster does.
CLUSTER_OPS = {
    "mget": "CMD_CLUSTER_SPLIT_ARRAY",      # arrays stitched in key order
    "mset": "CMD_CLUSTER_SPLIT_OK",         # +OK when every part says +OK
    "del": "CMD_CLUSTER_SPLIT_SUM",         # counts summed
    "unlink": "CMD_CLUSTER_SPLIT_SUM",
    "exists": "CMD_CLUSTER_SPLIT_SUM",
    "touch": "CMD_CLUSTER_SPLIT_SUM",
    "dbsize": "CMD_CLUSTER_ALL_SUM",
    "keys": "CMD_CLUSTER_ALL_CONCAT",
    "randomkey": "CMD_CLUSTER_ALL_ANY",     # a key from a non-empty node
    "flushall": "CMD_CLUSTER_ALL_SAME",     # the same reply from every primary
    "flushdb": "CMD_CLUSTER_ALL_SAME",
    "script|load": "CMD_CLUSTER_ALL_SAME",
    "script|flush": "CMD_CLUSTER_ALL_SAME",
    "script|exists": "CMD_CLUSTER_ALL_AND", # 1 only where every primary says 1
    "function|load": "CMD_CLUSTER_ALL_SAME",
    "function|delete": "CMD_CLUSTER_ALL_SAME",
    "function|flush": "CMD_CLUSTER_ALL_SAME",
    "scan": "CMD_CLUSTER_SCAN",
    "spublish": "CMD_CLUSTER_CHANNEL",
}

# How a command's RESP3 reply differs in shape from its RESP2 reply (enum
# cmd_resp3 in protocol/command.h), for resp3_from_resp2(): the L1 keeps
# RESP2 replies and serves RESP3 clients through it. Complete for the
# commands the L1 may cache (l1-commands); others are forwarded on RESP3
# connections and never converted.
RESP3_MAP = ["hgetall", "config|get"]            # flat field/value array -> map
RESP3_SET = ["smembers", "sinter", "sunion", "sdiff"]   # array -> set
RESP3_SCORE_PAIRS = [                             # with WITHSCORES: flat member/score -> [member, double] pairs
    "zrange", "zrangebyscore", "zrevrange", "zrevrangebyscore",
    "zunion", "zinter", "zdiff", "zrandmember",
]
RESP3_SHAPES = [
    ("CMD_RESP3_MAP", RESP3_MAP),
    ("CMD_RESP3_SET", RESP3_SET),
    ("CMD_RESP3_SCORE_PAIRS", RESP3_SCORE_PAIRS),
]

PROXY_FLAGS = [
    ("CMD_PROXY_DENY", DENY),
    ("CMD_PROXY_PIN", PIN),
    ("CMD_PROXY_LOCAL", LOCAL),
    ("CMD_PROXY_TXN", TXN),
    ("CMD_PROXY_SUBSCRIBE", SUBSCRIBE),
    ("CMD_PROXY_FLUSH", FLUSH),
    ("CMD_BLOCKING", EXTRA_BLOCKING),
]

# Key specs Redis 7.0 declares "unknown" (begin_search type unknown), by
# command and spec index. Each entry is either None (drop the spec) or a spec
# dict as parse_keyspec() returns it.
KEYSPEC_OVERRIDES = {
    # SORT / SORT_RO ... BY pattern / GET pattern: key names derived from the
    # contents of the sorted key, not arguments. Not key positions: dropped.
    ("sort", 1): None,
    ("sort_ro", 1): None,
    # SORT ... STORE dst: the keyword may appear anywhere. Search it backwards
    # from the second-to-last argument (the last STORE wins, as in Redis's
    # sortGetKeys). A GET/BY pattern spelled "store" can fool the search, so
    # the spec stays INCOMPLETE (which also makes SORT CMD_PROXY_FLUSH).
    ("sort", 2): {
        "bs": ("CMD_BS_KEYWORD", -2, "STORE"),
        "fk": ("CMD_FK_RANGE", 0, 1, 0),
        "flags": ["CMD_KS_OW", "CMD_KS_INCOMPLETE"],
    },
}

REDIS_FLAGS = {
    "write": "CMD_WRITE",
    "readonly": "CMD_READONLY",
    "admin": "CMD_ADMIN",
    "pubsub": "CMD_PUBSUB",
    "noscript": "CMD_NOSCRIPT",
    "blocking": "CMD_BLOCKING",
    "fast": "CMD_FAST",
    "no_mandatory_keys": "CMD_NO_MANDATORY_KEYS",
    "movablekeys": "CMD_MOVABLEKEYS",
    "denyoom": "CMD_DENYOOM",
}

KS_FLAGS = {
    "RO": "CMD_KS_RO",
    "RW": "CMD_KS_RW",
    "OW": "CMD_KS_OW",
    "RM": "CMD_KS_RM",
    "incomplete": "CMD_KS_INCOMPLETE",
}

# Order in which flags are printed (enum order of command.h).
FLAG_ORDER = [
    "CMD_WRITE", "CMD_READONLY", "CMD_ADMIN", "CMD_PUBSUB", "CMD_NOSCRIPT",
    "CMD_BLOCKING", "CMD_FAST", "CMD_NO_MANDATORY_KEYS", "CMD_MOVABLEKEYS",
    "CMD_DENYOOM", "CMD_PROXY_DENY", "CMD_PROXY_PIN", "CMD_PROXY_LOCAL",
    "CMD_PROXY_TXN", "CMD_PROXY_SUBSCRIBE", "CMD_PROXY_FLUSH",
]
KS_ORDER = ["CMD_KS_RO", "CMD_KS_RW", "CMD_KS_OW", "CMD_KS_RM", "CMD_KS_INCOMPLETE"]

INT16_MIN, INT16_MAX = -32768, 32767

# Open-addressing index of the top-level names (must equal CMD_TABLE_HASH_SIZE
# in protocol/command.h; the generated file checks it at compile time). The
# hash is 32-bit FNV-1a over the lower-case name, as cmd_hash() in command.c.
HASH_SIZE = 1024


class GenError(Exception):
    """A condition the script refuses to paper over."""


# --------------------------------------------------------------------------
# A minimal RESP2 client.
# --------------------------------------------------------------------------

class Resp:
    """One blocking connection; call() sends a command and parses the reply."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rfile = self.sock.makefile("rb")

    def close(self):
        self.rfile.close()
        self.sock.close()

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.rfile.readline()
        if not line.endswith(b"\r\n"):
            raise GenError("connection closed or bad reply: %r" % line)
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise GenError("server error: " + rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rfile.read(n + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise GenError("unexpected reply type: %r" % line)


def start_server(binary, host, port):
    """Start a throwaway redis-server on host:port; return the Popen."""
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", host, "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            raise GenError("redis-server exited with %d (port %d busy?)" % (proc.returncode, port))
        try:
            c = Resp(host, port, timeout=1.0)
            try:
                if c.call("PING") == "PONG":
                    return proc
            finally:
                c.close()
        except (OSError, GenError):
            time.sleep(0.05)
    stop_server(proc)
    raise GenError("redis-server on port %d did not answer PING" % port)


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------
# COMMAND INFO -> model.
# --------------------------------------------------------------------------

def pairs(lst):
    """Redis returns maps as flat [k, v, k, v ...] lists in RESP2."""
    return dict(zip(lst[0::2], lst[1::2]))


def check16(v, what):
    if not INT16_MIN <= v <= INT16_MAX:
        raise GenError("%s = %d does not fit int16_t" % (what, v))
    return v


def parse_keyspec(cmdname, idx, raw):
    """One COMMAND INFO key spec -> dict, None (dropped), or GenError."""
    d = pairs(raw)
    bs = pairs(d["begin_search"])
    fk = pairs(d["find_keys"])
    flags = d.get("flags", [])
    if "not_key" in flags:
        return None
    if (cmdname, idx) in KEYSPEC_OVERRIDES:
        return KEYSPEC_OVERRIDES[(cmdname, idx)]
    if bs["type"] == "index":
        bspec = pairs(bs["spec"])
        b = ("CMD_BS_INDEX", check16(bspec["index"], cmdname + " index"), None)
    elif bs["type"] == "keyword":
        bspec = pairs(bs["spec"])
        b = ("CMD_BS_KEYWORD", check16(bspec["startfrom"], cmdname + " startfrom"),
             bspec["keyword"])
    else:
        raise GenError("%s: key spec %d has begin_search %r; add a KEYSPEC_OVERRIDES entry"
                       % (cmdname, idx, bs["type"]))
    if fk["type"] == "range":
        fspec = pairs(fk["spec"])
        f = ("CMD_FK_RANGE", check16(fspec["lastkey"], cmdname + " lastkey"),
             check16(fspec["keystep"], cmdname + " keystep"),
             check16(fspec["limit"], cmdname + " limit"))
    elif fk["type"] == "keynum":
        fspec = pairs(fk["spec"])
        f = ("CMD_FK_KEYNUM", check16(fspec["keynumidx"], cmdname + " keynumidx"),
             check16(fspec["firstkey"], cmdname + " firstkey"),
             check16(fspec["keystep"], cmdname + " keystep"))
    else:
        raise GenError("%s: key spec %d has find_keys %r; add a KEYSPEC_OVERRIDES entry"
                       % (cmdname, idx, fk["type"]))
    if f[2 if f[0] == "CMD_FK_RANGE" else 3] < 1:
        raise GenError("%s: key spec %d has keystep < 1" % (cmdname, idx))
    ks = [KS_FLAGS[x] for x in flags if x in KS_FLAGS]
    return {"bs": b, "fk": f, "flags": ks}


def parse_command(raw):
    """One COMMAND INFO entry -> dict (recursing into subcommands)."""
    fullname = raw[0].lower()
    arity = check16(raw[1], fullname + " arity")
    flags = set(REDIS_FLAGS[x] for x in raw[2] if x in REDIS_FLAGS)
    specs = []
    rawspecs = raw[8] if len(raw) > 8 and raw[8] else []
    for i, ks in enumerate(rawspecs):
        s = acl_keyspec_ops(parse_keyspec(fullname, i, ks), ks)  # ACL hook
        if s is not None:
            specs.append(s)
    for (name, idx) in KEYSPEC_OVERRIDES:
        if name == fullname and idx >= len(rawspecs):
            raise GenError("override (%s, %d): no such key spec" % (name, idx))
    subs = []
    if len(raw) > 9 and raw[9]:
        subs = sorted((parse_command(s) for s in raw[9]), key=lambda c: c["name"])
    cmd = {
        "fullname": fullname,
        "name": fullname.split("|", 1)[1] if "|" in fullname else fullname,
        "arity": arity,
        "flags": flags,
        "specs": specs,
        "subs": subs,
    }
    acl_parse_command(raw, cmd)  # ACL hook
    return cmd


def apply_proxy_flags(cmds):
    """Add CMD_PROXY_* (and WAIT's CMD_BLOCKING) from the override lists."""
    byname = {}
    for c in cmds:
        byname[c["fullname"]] = c
        for s in c["subs"]:
            byname[s["fullname"]] = s
    for flag, names in PROXY_FLAGS:
        for n in names:
            if n.endswith("|*"):
                parent = byname.get(n[:-2])
                if parent is None or not parent["subs"]:
                    raise GenError("override %s: no such container command" % n)
                parent["flags"].add(flag)
                for s in parent["subs"]:
                    s["flags"].add(flag)
            elif n in byname:
                byname[n]["flags"].add(flag)
            else:
                raise GenError("override %s (%s): no such command" % (n, flag))
    for c in byname.values():
        if "CMD_BLOCKING" in c["flags"]:
            c["flags"].add("CMD_PROXY_PIN")
        if any("CMD_KS_INCOMPLETE" in s["flags"] for s in c["specs"]):
            c["flags"].add("CMD_PROXY_FLUSH")
    for n, op in PROXY_OPS.items():
        if n not in byname:
            raise GenError("op %s (%s): no such command" % (n, op))
        byname[n]["op"] = op
    for n, op in CLUSTER_OPS.items():  # Cluster hook
        if n not in byname:
            raise GenError("cluster op %s (%s): no such command" % (n, op))
        byname[n]["cluster"] = op
    for shape, names in RESP3_SHAPES:
        for n in names:
            if n not in byname:
                raise GenError("RESP3 shape %s (%s): no such command" % (n, shape))
            byname[n].setdefault("resp3", []).append(shape)
    # A container reached without a known subcommand is refused if any of its
    # subcommands would be: the proxy never forwards what it cannot classify.
    for c in cmds:
        if any("CMD_PROXY_DENY" in s["flags"] for s in c["subs"]):
            c["flags"].add("CMD_PROXY_DENY")


# --------------------------------------------------------------------------
# ACL section (proxy/acl.c): everything the proxy's ACLs need from the
# server, kept apart from the rest so it merges cleanly. The hooks into the
# code above and below are one call each, marked "ACL hook".
#
#   * categories: `ACL CAT` gives Redis's own list in its own bit order; it
#     becomes the X-macro CMD_CATEGORIES in protocol/command_cat.h (the enum
#     cmd_cat, the names and cmd_cat_lookup() all come from it), and each
#     command's and subcommand's categories (COMMAND INFO index 6) become
#     its acl_categories bitmask;
#   * acl_flags: CMD_ACL_NO_AUTH for commands Redis flags "no_auth" (AUTH,
#     HELLO, QUIT, RESET): ACLs never refuse them;
#   * key-spec ops: the logical operation flags of each key spec (access,
#     insert, delete, update, variable_flags) that Redis 7.0's ACL %R/%W
#     check reads (ACLSelectorCheckKey); kept in their own field so the
#     RO/RW/OW/RM flags stay as they were. Overridden specs keep the ops of
#     the spec they replace.
# --------------------------------------------------------------------------

ACL_KS_OPS = {
    "access": "CMD_KS_OP_ACCESS",
    "insert": "CMD_KS_OP_INSERT",
    "delete": "CMD_KS_OP_DELETE",
    "update": "CMD_KS_OP_UPDATE",
    "variable_flags": "CMD_KS_OP_VARIABLE",
}
ACL_KS_OPS_ORDER = ["CMD_KS_OP_ACCESS", "CMD_KS_OP_INSERT", "CMD_KS_OP_DELETE",
                    "CMD_KS_OP_UPDATE", "CMD_KS_OP_VARIABLE"]

# Filled by acl_fetch(): category names in ACL CAT order ("keyspace", ...).
ACL_CATEGORIES = []


def acl_cat_ident(name):
    return "CMD_CAT_" + name.upper().replace("-", "_")


def acl_fetch(conn):
    """ACL hook: read the category list (ACL CAT) before parsing commands."""
    cats = conn.call("ACL", "CAT")
    if not cats or len(cats) > 32:
        raise GenError("ACL CAT returned %r: expected 1..32 categories" % (cats,))
    for c in cats:
        if not c.replace("-", "").isalnum() or c != c.lower():
            raise GenError("unexpected category name %r" % c)
    ACL_CATEGORIES[:] = cats


def acl_parse_command(raw, cmd):
    """ACL hook: categories and no_auth of one COMMAND INFO entry."""
    cats = []
    for c in (raw[6] if len(raw) > 6 and raw[6] else []):
        if not c.startswith("@") or c[1:] not in ACL_CATEGORIES:
            raise GenError("%s: category %r not in ACL CAT" % (cmd["fullname"], c))
        cats.append(c[1:])
    cmd["acl_categories"] = cats
    cmd["acl_flags"] = ["CMD_ACL_NO_AUTH"] if "no_auth" in raw[2] else []


def acl_keyspec_ops(spec, raw):
    """ACL hook: a parsed key spec (maybe an override) plus its ops."""
    if spec is None:
        return None
    flags = pairs(raw).get("flags", [])
    return dict(spec, ops=[ACL_KS_OPS[x] for x in flags if x in ACL_KS_OPS])


def acl_spec_fields(spec):
    """ACL hook: trailing initializer of a struct cmd_keyspec."""
    return ", %s" % cflags(spec.get("ops", []), ACL_KS_OPS_ORDER)


def acl_entry_fields(c):
    """ACL hook: trailing initializers of a struct cmd."""
    cats = [acl_cat_ident(x) for x in ACL_CATEGORIES if x in c["acl_categories"]]
    return ", %s, %s" % (" | ".join(cats) if cats else "0",
                         " | ".join(c["acl_flags"]) if c["acl_flags"] else "0")


def acl_generate_header(version):
    """The X-macro of the categories: protocol/command_cat.h."""
    out = ["""/*
 * protocol/command_cat.h -- GENERATED FILE, do not edit by hand.
 *
 * Redis's ACL command categories, from `ACL CAT` of redis-server %s, in
 * Redis's own order (which is also bit order), generated with
 * protocol/command_table.c by tools/gen_command_table.py. The one
 * declaration of the list: protocol/command.h builds enum cmd_cat from it,
 * protocol/command.c the names that cmd_cat_lookup() searches.
 *
 * X(IDENT, "name"): CMD_CAT_IDENT is the bit, "name" what ACL rules say
 * after "@".
 */
#ifndef REDSNANO_PROTOCOL_COMMAND_CAT_H
#define REDSNANO_PROTOCOL_COMMAND_CAT_H

#define CMD_CATEGORIES(X) \\""" % version]
    for c in ACL_CATEGORIES:
        out.append("    X(%s, %s) \\" % (acl_cat_ident(c)[len("CMD_CAT_"):], cstr(c)))
    out.append("")
    out.append("#define CMD_CATEGORY_COUNT %d" % len(ACL_CATEGORIES))
    out.append("")
    out.append("#endif")
    out.append("")
    return "\n".join(out)

# --------------------------------------------------------------------------
# (end of the ACL section)
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Model -> C.
# --------------------------------------------------------------------------

def cident(fullname):
    return fullname.replace("|", "__").replace("-", "_")


def cflags(flags, order):
    present = [f for f in order if f in flags]
    return " | ".join(present) if present else "0"


def cstr(s):
    if s is None:
        return "NULL"
    if any(ch in s for ch in '"\\') or not s.isprintable():
        raise GenError("unexpected characters in %r" % s)
    return '"%s"' % s


def emit_specs(out, c):
    if not c["specs"]:
        return "NULL"
    arr = "ks_" + cident(c["fullname"])
    out.append("static const struct cmd_keyspec %s[] = {" % arr)
    for s in c["specs"]:
        bs, fk = s["bs"], s["fk"]
        out.append("    { %s, %d, %s, %s, %d, %d, %d, %s%s }," % (
            bs[0], bs[1], cstr(bs[2]), fk[0], fk[1], fk[2], fk[3],
            cflags(s["flags"], KS_ORDER), acl_spec_fields(s)))  # ACL hook
    out.append("};")
    return arr


def emit_entry(c, specs_arr, subs_arr):
    return "    { %s, %d, %s, %s, %d, %s, %d, %s%s }," % (
        cstr(c["name"]), c["arity"], cflags(c["flags"], FLAG_ORDER),
        specs_arr, len(c["specs"]), subs_arr, len(c["subs"]), c.get("op", "CMD_OP_NONE"),
        acl_entry_fields(c) + cluster_entry_field(c) +  # ACL hook, Cluster hook
        ", %s" % (" | ".join(c.get("resp3", [])) or "0"))


def cluster_entry_field(c):
    """What the entry does in cluster mode (CLUSTER_OPS)."""
    return ", %s" % c.get("cluster", "CMD_CLUSTER_NONE")


def name_hash(name):
    """32-bit FNV-1a of the (lower-case) name: must match command.c."""
    h = 2166136261
    for b in name.encode():
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def build_hash(cmds):
    """Slot -> 1 + index into cmd_table (0 = empty), linear probing."""
    if len(cmds) * 4 > HASH_SIZE * 3:
        raise GenError("%d commands overload a %d-slot index: raise HASH_SIZE" % (len(cmds), HASH_SIZE))
    slots = [0] * HASH_SIZE
    longest = 0
    for i, c in enumerate(cmds):
        h = name_hash(c["name"]) & (HASH_SIZE - 1)
        probes = 1
        while slots[h]:
            h = (h + 1) & (HASH_SIZE - 1)
            probes += 1
        slots[h] = i + 1
        longest = max(longest, probes)
    return slots, longest


def generate(cmds, version):
    out = []
    out.append("""/*
 * protocol/command_table.c -- GENERATED FILE, do not edit by hand.
 *
 * Generated by tools/gen_command_table.py from `COMMAND INFO` of
 * redis-server %s, plus the proxy's flags (CMD_PROXY_*) and key-spec
 * overrides kept in that script. To regenerate:
 *
 *     python3 tools/gen_command_table.py --start --port 7801
 *
 * Table and subcommand arrays are sorted by name (byte order, lower case):
 * cmd_lookup_sub() binary-searches them; cmd_lookup() goes through the hash
 * index cmd_table_hash at the end of this file.
 * Entry: { name, arity, flags, keyspecs, nkeyspecs, subcommands, nsubcommands, op,
 *          acl_categories, acl_flags, cluster, resp3 }
 * Key spec: { bs, bs_pos, bs_keyword, fk, fk_a, fk_b, fk_c, flags, ops }
 */
#include "protocol/command.h"
""" % version)
    entries = []
    for c in cmds:
        sub_arr = "NULL"
        if c["subs"]:
            sub_entries = []
            for s in c["subs"]:
                sub_entries.append(emit_entry(s, emit_specs(out, s), "NULL"))
            sub_arr = "sub_" + cident(c["fullname"])
            out.append("static const struct cmd %s[] = {" % sub_arr)
            out.extend(sub_entries)
            out.append("};")
        entries.append(emit_entry(c, emit_specs(out, c), sub_arr))
    out.append("")
    out.append("const struct cmd cmd_table[] = {")
    out.extend(entries)
    out.append("};")
    out.append("")
    out.append("const size_t cmd_table_len = sizeof(cmd_table) / sizeof(cmd_table[0]);")
    out.append("")
    slots, longest = build_hash(cmds)
    out.append("/* Name index: slot (FNV-1a of the name & (CMD_TABLE_HASH_SIZE - 1), then")
    out.append(" * linear probing) -> 1 + index into cmd_table, 0 = empty. Longest probe: %d. */" % longest)
    out.append("const uint16_t cmd_table_hash[] = {")
    for i in range(0, len(slots), 16):
        out.append("    " + ", ".join("%d" % v for v in slots[i:i + 16]) + ",")
    out.append("};")
    out.append("_Static_assert(sizeof(cmd_table_hash) / sizeof(cmd_table_hash[0]) == CMD_TABLE_HASH_SIZE,")
    out.append("               \"regenerate: HASH_SIZE in tools/gen_command_table.py != CMD_TABLE_HASH_SIZE\");")
    out.append("")
    return "\n".join(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Generate protocol/command_table.c from redis-server 7.0")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--start", action="store_true",
                    help="start a throwaway redis-server on host:port and stop it afterwards")
    ap.add_argument("--server", default="redis-server", help="redis-server binary for --start")
    ap.add_argument("--out", default=os.path.join(here, "..", "protocol", "command_table.c"))
    args = ap.parse_args()

    proc = None
    try:
        if args.start:
            proc = start_server(args.server, args.host, args.port)
        conn = Resp(args.host, args.port)
        try:
            info = conn.call("INFO", "server")
            version = None
            for line in info.split("\r\n"):
                if line.startswith("redis_version:"):
                    version = line.split(":", 1)[1]
            if not version or not version.startswith("7."):
                raise GenError("need redis-server 7.x, got %r" % version)
            raw = conn.call("COMMAND", "INFO")
            acl_fetch(conn)  # ACL hook
        finally:
            conn.close()
        cmds = sorted((parse_command(r) for r in raw if r is not None), key=lambda c: c["name"])
        apply_proxy_flags(cmds)
        text = generate(cmds, version)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
        # ACL hook: the category X-macro, next to the table.
        cat_out = os.path.join(os.path.dirname(args.out), "command_cat.h")
        with open(cat_out + ".tmp", "w") as f:
            f.write(acl_generate_header(version))
        os.replace(cat_out + ".tmp", cat_out)
        nsub = sum(len(c["subs"]) for c in cmds)
        print("%s: %d commands, %d subcommands, from redis-server %s"
              % (os.path.normpath(args.out), len(cmds), nsub, version))
        return 0
    except (GenError, OSError) as e:
        print("gen_command_table: %s" % e, file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop_server(proc)


if __name__ == "__main__":
    sys.exit(main())
