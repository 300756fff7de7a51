# shellcheck shell=bash
# bench/lib.sh — shared helpers of bench/compare, bench/cluster, bench/instructions and bench/memory.
#
#   compare / cluster / instructions / memory ──source──> lib.sh ──starts──> redis-server
#                                                         ├──────> a Redis Cluster (bench_start_redis_cluster)
#                                                         ├──────> redsnano (L1 off / on / cluster mode)
#                                                         └──────> nutcracker (twemproxy)
#
# Contract:
# - Sourced, never run. The caller sets BENCH_NAME (used in messages and the
#   temp dir name) before sourcing, and calls bench_init once.
# - Every process started here is recorded (bench_track) and stopped by
#   bench_cleanup, which bench_init installs as the EXIT trap; INT and TERM
#   exit through it too. Processes are stopped by their pid, never by name.
# - Everything listens on 127.0.0.1 only. Ports are passed in by the caller.
# - The redsnano binary is $REDSNANO if set, else the first of
#   <tree>/build/redsnano and /work/bench-build/redsnano that exists.
#   bench_redsnano_ok tells whether it exists and answers PING; the scripts
#   print "not available" rows instead of failing when it does not.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_TREE=$(cd "$BENCH_DIR/.." && pwd)
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
BENCH_PIDS=()                 # pids to stop on exit, in start order
BENCH_TMP=""                  # private temp dir (logs, configs); removed on exit unless BENCH_KEEP=1
BENCH_NICE=${BENCH_NICE:-0}   # nice value of every server, proxy and client started (0 = as is)
BENCH_PFX=()                  # prefix of every command started: (nice -n N) or (); set by bench_init

bench_log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "error: $*"; exit 1; }

# Stop every tracked process (TERM, then KILL after 5 s) and remove the temp dir.
bench_cleanup() {
    local pid i
    trap - EXIT INT TERM
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${BENCH_PIDS[$i]}
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
        if [[ ${BENCH_KEEP:-0} == 1 ]]; then bench_log "kept $BENCH_TMP"; else rm -rf "$BENCH_TMP"; fi
    fi
}

# Create the temp dir and results dir, install the traps, check the tools.
bench_init() {
    local t
    for t in redis-server redis-cli redis-benchmark "$@"; do
        command -v "$t" >/dev/null || bench_die "$t not found (apt-get install redis-server redis-tools nutcracker gnuplot-nox valgrind)"
    done
    [[ $BENCH_NICE != 0 ]] && BENCH_PFX=(nice -n "$BENCH_NICE")
    BENCH_TMP=$(mktemp -d "/tmp/redsnano-$BENCH_NAME.XXXXXX")
    mkdir -p "$BENCH_RESULTS"
    trap bench_cleanup EXIT
    trap 'bench_log "interrupted"; exit 130' INT TERM
}

bench_track() { BENCH_PIDS+=("$1"); }

# Stop one tracked process now (TERM, wait up to 30 s, then KILL).
bench_stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 0
}

# True if nothing listens on 127.0.0.1:PORT.
bench_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wait until 127.0.0.1:PORT answers PING with PONG (up to SECS, default 10),
# as long as PID lives. Returns 0 when it does, 1 otherwise.
bench_wait_ping() {
    local port=$1 pid=$2 secs=${3:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        [[ $(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    return 1
}

# Start redis-server on PORT (no persistence) with extra arguments (e.g.
# --tls-port ...); sets REDIS_PID.
bench_start_redis() {
    local port=$1
    shift
    bench_port_free "$port" || bench_die "port $port is in use"
    "${BENCH_PFX[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode yes --daemonize no --logfile "$BENCH_TMP/redis-$port.log" "$@" &
    REDIS_PID=$!
    bench_track "$REDIS_PID"
    bench_wait_ping "$port" "$REDIS_PID" || bench_die "redis-server on $port did not start (see $BENCH_TMP/redis-$port.log)"
}

# The redsnano binary, or "" if there is none.
bench_redsnano_bin() {
    local b
    for b in "${REDSNANO:-}" "$BENCH_TREE/build/redsnano" /work/bench-build/redsnano; do
        [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
    done
    echo ""
}

# Start redsnano on PORT in front of 127.0.0.1:RPORT with extra directives
# (--name value ...), optionally under a wrapper command given in
# BENCH_WRAP (e.g. valgrind). Sets RS_PID. Returns 1 (and leaves nothing
# running) if there is no binary or it does not answer PING within SECS
# (BENCH_WAIT, default 10).
bench_start_redsnano() {
    local port=$1 rport=$2; shift 2
    bench_start_redsnano_mode "$port" --primary "127.0.0.1:$rport" "$@"
}

# The same with the deployment given as directives instead of a primary:
# bench_start_redsnano_mode PORT --cluster 127.0.0.1:7931 [--name value ...].
bench_start_redsnano_mode() {
    local port=$1; shift
    local bin; bin=$(bench_redsnano_bin)
    RS_PID=""
    [[ -n $bin ]] || { bench_log "redsnano: no binary (build/redsnano)"; return 1; }
    bench_port_free "$port" || bench_die "port $port is in use"
    # shellcheck disable=SC2086
    "${BENCH_PFX[@]}" ${BENCH_WRAP:-} "$bin" --port "$port" --bind 127.0.0.1 \
        --loglevel warning "$@" >"$BENCH_TMP/redsnano-$port.log" 2>&1 &
    RS_PID=$!
    bench_track "$RS_PID"
    if ! bench_wait_ping "$port" "$RS_PID" "${BENCH_WAIT:-10}"; then
        bench_log "redsnano on $port did not answer PING: $(tail -n 3 "$BENCH_TMP/redsnano-$port.log" | tr '\n' ' ')"
        bench_stop "$RS_PID"
        RS_PID=""
        return 1
    fi
    return 0
}

# Write the twemproxy config for one pool listening on PORT with the
# servers 127.0.0.1:RPORT (one, or several as "A B C", weight 1 each). Fairness choices (see bench/README.md): one server
# connection, connected before the first request, never ejected, no request
# timeout (a timeout costs twemproxy a timer per request; none is the
# cheapest setting for it).
bench_nutcracker_yml() {
    local port=$1 rport=$2 file=$3
    cat >"$file" <<EOF
bench:
  listen: 127.0.0.1:$port
  redis: true
  hash: fnv1a_64
  distribution: ketama
  preconnect: true
  auto_eject_hosts: false
  server_connections: ${NC_SERVER_CONNECTIONS:-1}
  backlog: 1024
  servers:
EOF
    local p
    for p in $rport; do printf '   - 127.0.0.1:%s:1\n' "$p" >>"$file"; done
}

# Start nutcracker on PORT (stats on SPORT) in front of 127.0.0.1:RPORT
# (one port, or several as "A B C": one ketama pool over them),
# optionally under BENCH_WRAP. Log level 4 (warnings), as redsnano's
# "warning"; mbuf size left at its default (16 KiB). Sets NC_PID.
bench_start_nutcracker() {
    local port=$1 sport=$2 rport=$3
    local yml=$BENCH_TMP/nutcracker-$port.yml
    bench_port_free "$port" || bench_die "port $port is in use"
    bench_port_free "$sport" || bench_die "port $sport is in use"
    bench_nutcracker_yml "$port" "$rport" "$yml"
    nutcracker -t -c "$yml" >/dev/null 2>&1 || bench_die "nutcracker rejected $yml"
    # shellcheck disable=SC2086
    "${BENCH_PFX[@]}" ${BENCH_WRAP:-} nutcracker -c "$yml" -s "$sport" -a 127.0.0.1 -v 4 \
        -o "$BENCH_TMP/nutcracker-$port.log" -p "$BENCH_TMP/nutcracker-$port.pid" \
        >"$BENCH_TMP/nutcracker-$port.out" 2>&1 &
    NC_PID=$!
    bench_track "$NC_PID"
    bench_wait_ping "$port" "$NC_PID" "${BENCH_WAIT:-10}" || bench_die "nutcracker on $port did not start (see $BENCH_TMP)"
}

# Set every key of redis-benchmark's -r 100000 keyspace (key:%012d) to a
# value of SIZE bytes, directly on the redis-server at RPORT (one Lua call).
bench_populate() {
    local rport=$1 size=$2 nkeys=${3:-100000}
    redis-cli -h 127.0.0.1 -p "$rport" EVAL \
        "for i=0,tonumber(ARGV[1])-1 do redis.call('SET', string.format('key:%012d', i), string.rep('x', tonumber(ARGV[2]))) end return 1" \
        0 "$nkeys" "$size" >/dev/null || bench_die "populate on $rport failed"
}

# Make a CA and a certificate for 127.0.0.1 / localhost (server and client
# use) in DIR with the openssl CLI: DIR/ca.crt, DIR/cert.crt, DIR/cert.key.
bench_tls_certs() {
    local dir=$1
    local gen="openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    mkdir -p "$dir"
    printf '%s\n' "[req]" "distinguished_name = dn" "[dn]" "[ca_ext]" \
        "basicConstraints = critical,CA:true" "keyUsage = critical,keyCertSign,cRLSign" \
        "[cert_ext]" "basicConstraints = CA:false" "subjectAltName = DNS:localhost,IP:127.0.0.1" \
        "extendedKeyUsage = serverAuth,clientAuth" >"$dir/t.cnf"
    (cd "$dir" &&
        $gen -x509 -days 2 -keyout ca.key -out ca.crt -subj /CN=bench-ca -config t.cnf -extensions ca_ext &&
        $gen -keyout cert.key -out cert.csr -subj /CN=localhost -config t.cnf &&
        openssl x509 -req -days 2 -in cert.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out cert.crt \
            -extfile t.cnf -extensions cert_ext) >"$dir/openssl.log" 2>&1
}

# Send one command to a server or proxy; prints the reply (raw).
bench_cmd() { local port=$1; shift; redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null || true; }

# VmRSS of PID in KiB.
bench_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# The machine, one line: "N cores, CPU model, Linux kernel".
bench_machine() {
    local cpu
    cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    printf '%s cores, %s, Linux %s' "$(nproc)" "${cpu:-unknown CPU}" "$(uname -r)"
}

# Percent of all CPUs busy over SECS seconds (default 1), from /proc/stat;
# taken while the benchmark is idle, it tells how much else the machine runs.
bench_cpu_busy() {
    local secs=${1:-1} a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6; exit}' /proc/stat)
    sleep "$secs"
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6; exit}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1]; idle = y[2] - x[2]; printf "%.0f", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

# Wait up to MAXSECS for the machine to be quiet (under PCT% CPU busy over
# 5 s, default 15%). Returns 0 when it is, 1 when time ran out.
bench_wait_idle() {
    local maxsecs=$1 pct=${2:-15} start=$SECONDS busy
    while :; do
        busy=$(bench_cpu_busy 5)
        ((busy < pct)) && return 0
        ((SECONDS - start >= maxsecs)) && { bench_log "machine still ${busy}% busy after ${maxsecs} s; going on"; return 1; }
        bench_log "machine ${busy}% busy with other work; waiting for it to calm down"
        sleep 10
    done
}

# CPU time used so far by all threads of PID, in ns (from schedstat).
bench_cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

# Start a Redis Cluster of one primary per port in PORTS ("A B C"; bus port
# = port + 10000; no replicas), join it with redis-cli --cluster create and
# wait (up to 30 s) until every node says cluster_state:ok. Each node is
# tracked; their pids are put in CLUSTER_PIDS.
bench_start_redis_cluster() {
    local ports=$1 p addrs=() i ok
    CLUSTER_PIDS=()
    for p in $ports; do
        bench_port_free $((p + 10000)) || bench_die "cluster bus port $((p + 10000)) is in use"
        mkdir -p "$BENCH_TMP/cluster-$p"
        bench_start_redis "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
            --cluster-node-timeout 5000 --dir "$BENCH_TMP/cluster-$p"
        CLUSTER_PIDS+=("$REDIS_PID")
        addrs+=("127.0.0.1:$p")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-yes >"$BENCH_TMP/cluster-create.log" 2>&1 ||
        bench_die "redis-cli --cluster create failed (see $BENCH_TMP/cluster-create.log)"
    for ((i = 0; i < 300; i++)); do
        ok=1
        for p in $ports; do
            redis-cli -h 127.0.0.1 -p "$p" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
        done
        ((ok)) && return 0
        sleep 0.1
    done
    bench_die "the cluster on $ports did not reach cluster_state:ok in 30 s"
}

# CPU time used so far by all threads of every PID given, in ns.
bench_cpu_ns_sum() {
    local pid
    for pid in "$@"; do cat /proc/"$pid"/task/*/schedstat 2>/dev/null; done | awk '{ s += $1 } END { printf "%.0f", s }'
}
