#!/usr/bin/env bash
# A throw-away single-node Ceph cluster (one mon, one BlueStore OSD on a sparse file, radosgw) on 127.0.0.1, every
# file, log, socket and listener under DIR. For MiniVmm's S3 tests and benchmarks; never for data anyone keeps.
#   rgw.sh start DIR   brings it up, creates the S3 user and prints: endpoint URL, access key, secret key (one per line)
#   rgw.sh bucket DIR NAME   creates bucket NAME (curl's SigV4; RGW wants the x-amz-content-sha256 header)
#   rgw.sh stop DIR    stops radosgw, then the OSD, then the mon (that order: an OSD without its mon hangs in shutdown)
# Needs the Debian packages ceph-mon ceph-osd radosgw ceph-common (Ceph 16.2). Environment: RGW_PORT (default: a free
# port), RGW_OSD_SIZE (sparse BlueStore file, default 8G).
set -euo pipefail

ACCESS_KEY=MINIVMMTESTACCESSKEY
SECRET_KEY=minivmm-test-secret-key-not-a-secret-0000
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf

pidof_file() { [ -s "$1" ] && cat "$1" || true; }

# Waits for a pid file's process to exit (up to $2 tenths of a second), then kills it.
stop_daemon() {
  local pid; pid=$(pidof_file "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq "$2"); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

if [ "$cmd" = bucket ]; then
  port=$(sed -n 's/.*endpoint=127.0.0.1:\([0-9]*\).*/\1/p' "$conf")
  code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "http://127.0.0.1:$port/${3:?bucket name}")
  [ "$code" = 200 ] || { echo "rgw.sh: creating bucket ${3} answered HTTP $code" >&2; exit 1; }
  exit 0
fi
if [ "$cmd" = stop ]; then
  stop_daemon "$dir/run/client.rgw.pid" 50
  stop_daemon "$dir/run/osd.0.pid" 50
  stop_daemon "$dir/run/mon.a.pid" 50
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR | bucket DIR NAME" >&2; exit 2; }
for tool in ceph-mon ceph-osd radosgw ceph radosgw-admin monmaptool; do
  command -v "$tool" >/dev/null || { echo "rgw.sh: $tool is missing (apt-get install ceph-mon ceph-osd radosgw ceph-common)" >&2; exit 3; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mon_port=$(free_port); rgw_port=${RGW_PORT:-$(free_port)}
fsid=$(cat /proc/sys/kernel/random/uuid)
mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd" "$dir/rgw"

cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
# With auth none radosgw never finishes its mon session unless the mon client mode is crc.
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# Each pool creation waits for a map proposal; the default 1 s interval makes start-up crawl.
paxos propose interval = 0.01
paxos min wait = 0.01
mon osd initial require min compat client = luminous
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
log to stderr = false
err to stderr = false
log to syslog = false
keyring = $dir/keyring
[mon]
mon data = $dir/mon
[osd]
osd data = $dir/osd
osd objectstore = bluestore
bluestore block create = true
bluestore block size = ${RGW_OSD_SIZE:-8589934592}
bluestore fsck on mount = false
osd heartbeat addr = 127.0.0.1
osd max object name len = 256
osd max object namespace len = 64
osd memory target = 268435456
bluestore cache autotune = false
bluestore cache size = 134217728
[client.rgw]
rgw data = $dir/rgw
# Without tcp_nodelay small range reads wait ~40 ms for the delayed ACK (Nagle).
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw thread pool size = 64
CONF

t0=$(date +%s.%N)
monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1
ceph-mon -c "$conf" -i a
C="ceph -c $conf --connect-timeout 20"
$C osd create >/dev/null
# The RGW pools up front (in parallel, while the OSD is made and boots): radosgw would otherwise create them one map
# change at a time, and each ceph CLI call costs ~1 s of Python start-up here.
pids=()
for pool in .rgw.root default.rgw.log default.rgw.control default.rgw.meta default.rgw.buckets.index \
            default.rgw.buckets.data default.rgw.buckets.non-ec; do
  $C osd pool create "$pool" 8 8 --autoscale-mode=off >/dev/null 2>&1 & pids+=($!)
done
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$(cat /proc/sys/kernel/random/uuid)" >/dev/null 2>&1
ceph-osd -c "$conf" -i 0
wait "${pids[@]}"
# The mon's cluster log says when the OSD booted; polling it costs nothing (a ceph CLI poll costs a second each).
for _ in $(seq 600); do
  grep -q 'osd.0 .* boot' "$dir/log/cluster.log" 2>/dev/null && break; sleep 0.05
done
radosgw -c "$conf" -n client.rgw
for _ in $(seq 300); do
  curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" && break; sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" || { echo "rgw.sh: radosgw did not come up (see $dir/log)" >&2; exit 4; }
radosgw-admin -c "$conf" -n client.rgw user create --uid=minivmm --display-name=minivmm \
  --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null 2>"$dir/log/user-create.err"
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN{printf "rgw up in %.1f s\n", b-a}' > "$dir/start-time"
echo "http://127.0.0.1:$rgw_port"
echo "$ACCESS_KEY"
echo "$SECRET_KEY"
