#!/bin/bash
# Side-by-side push/pull benchmark: docker (dockerd 20.10, overlay2) vs imgstore, one
# docker-registry per direction, everything under this directory (a journalled ext4).
# usage: bench-registry.sh IMGSTORE ARCHIVE RUNS [LEVEL]   (run it from a copy in an empty
# directory on the file system to measure: it writes registries, roots and logs beside itself).
# On a loop device, `losetup --direct-io=on` makes it write to the disk as a disk would (see
# docs/benchmarks.md, "Pull after the evening's changes"); the default buffered loop device
# holds every write in the backing file's page cache until the file system flushes.
set -eu
B=$1; ARCHIVE=$2; RUNS=$3; LEVEL=${4:-}
W=$(cd "$(dirname "$0")" && pwd); cd "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1;
  for m in $(grep -o "$W/[^ ]*" /proc/mounts | sort -r); do umount "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
reg() { # NAME PORT
  rm -rf "$W/$1"; mkdir -p "$W/$1"
  printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$W/$1" "$2" > "$W/$1.yml"
  /usr/bin/docker-registry serve "$W/$1.yml" >"$W/$1.log" 2>&1 & REGPID=$!
  until curl -sf "http://127.0.0.1:$2/v2/" >/dev/null; do sleep 0.1; done
}
dockerd_start() { # NAME
  mkdir -p "$W/$1" "$W/$1.ex"
  /usr/sbin/dockerd --storage-driver=overlay2 --iptables=false --ip6tables=false --bridge=none \
    --data-root "$W/$1" --exec-root "$W/$1.ex" --pidfile "$W/$1.ex/pid" --host "unix://$W/$1.sock" >"$W/$1.log" 2>&1 &
  PIDS+=($!)
  until /usr/bin/docker -H "unix://$W/$1.sock" version >/dev/null 2>&1; do sleep 0.2; done
}
t() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
# Source registry with the image, pushed once by dockerd.
reg src 5551; PIDS+=($REGPID)
rm -rf d1 d1.ex d2 d2.ex o1 o2
dockerd_start d1
docker -H unix://$W/d1.sock load -q -i "$ARCHIVE" >/dev/null
docker -H unix://$W/d1.sock tag gen/bench:1 127.0.0.1:5551/gen/bench:1
docker -H unix://$W/d1.sock tag gen/bench:1 127.0.0.1:5552/gen/bench:1
docker -H unix://$W/d1.sock push -q 127.0.0.1:5551/gen/bench:1 >/dev/null
$B --data-root o2 --storage-driver overlay2 load -q -i "$ARCHIVE" >/dev/null
$B --data-root o2 tag gen/bench:1 127.0.0.1:5552/gen/bench:1
dockerd_start d2
lvl=(); [ -n "$LEVEL" ] && lvl=(--compression-level "$LEVEL")
echo "| run | docker push | imgstore push | ratio | docker pull | imgstore pull | ratio |"
for i in $(seq 1 "$RUNS"); do
  reg dst 5552; sync; dp=$(t docker -H unix://$W/d1.sock push -q 127.0.0.1:5552/gen/bench:1); kill $REGPID; wait $REGPID 2>/dev/null || true
  reg dst 5552; rm -rf o2/image/overlay2/distribution; sync
  ip=$(t $B --data-root o2 push -q "${lvl[@]}" 127.0.0.1:5552/gen/bench:1); kill $REGPID; wait $REGPID 2>/dev/null || true
  docker -H unix://$W/d2.sock rmi -f 127.0.0.1:5551/gen/bench:1 >/dev/null 2>&1 || true; rm -rf o1; sync
  dl=$(t docker -H unix://$W/d2.sock pull -q 127.0.0.1:5551/gen/bench:1); sync
  il=$(t $B --data-root o1 --storage-driver overlay2 pull -q 127.0.0.1:5551/gen/bench:1)
  echo "| $i | $dp | $ip | $(echo "scale=2; $dp/$ip" | bc) | $dl | $il | $(echo "scale=2; $dl/$il" | bc) |"
done
