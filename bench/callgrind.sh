#!/usr/bin/env bash
# Instructions per request of one GET endpoint, server only (callgrind): BIN NAME PATH, e.g.
#   bench/callgrind.sh target/release/tessera after /jwks.json
# Starts `tessera serve` under valgrind on a fresh SQLite database, sends 200 unrecorded and
# 1,000 recorded requests over 4 keep-alive connections, prints the total / 1,000.
set -e
BIN=$1; NAME=$2; REQPATH=$3
D=$(mktemp -d)
cd $D
PORT=$((20000 + RANDOM % 10000))
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$D/cg.out $BIN --database sqlite://$D/t.db serve --listen 127.0.0.1:$PORT --key-rotation-days 0 > $D/out.log 2> $D/err.log &
VPID=$!
for i in $(seq 1 600); do curl -s -o /dev/null http://127.0.0.1:$PORT/health/live && break; sleep 0.5; done
python3 - $PORT $REQPATH <<'PY'
import sys, http.client, subprocess
port=int(sys.argv[1]); path=sys.argv[2]
conns=[http.client.HTTPConnection("127.0.0.1",port) for _ in range(4)]
def go(n):
    for i in range(n):
        c=conns[i%4]; c.request("GET",path); r=c.getresponse(); r.read()
        assert r.status==200, r.status
go(200)
subprocess.run(["callgrind_control","-i","on"],check=True,capture_output=True)
go(1000)
subprocess.run(["callgrind_control","-i","off"],check=True,capture_output=True)
subprocess.run(["callgrind_control","-d"],check=True,capture_output=True)
PY
sleep 1
kill $VPID; wait $VPID 2>/dev/null || true
TOTAL=$(callgrind_annotate $D/cg.out.1 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk "{print \$1}" | tr -d ,)
echo "$NAME $REQPATH instructions/request: $((TOTAL / 1000))"
