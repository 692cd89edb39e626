#!/usr/bin/env bash
# Make a Docker engine answer on /var/run/docker.sock and make sure the local Python base image exists.
# Idempotent: does nothing that is already done. Nothing is pulled: the base image is built with
# debootstrap from Debian packages and imported.
set -euo pipefail
BASE_IMAGE="${AMLC_BASE_IMAGE:-amlc/python:3-bookworm}"
SOCK=/var/run/docker.sock

log() { echo "docker-setup: $*" >&2; }

answers() { curl -sf --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# A pid file left by a daemon that was killed (or whose pid is now another process or a zombie) stops
# dockerd from starting: remove it unless it names a live dockerd/containerd.
clear_stale_pidfile() {
  local file=$1 name=$2 pid state
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && [ "$state" != "Z" ]; then
      return 0
    fi
  fi
  log "removing stale $file"
  rm -f "$file"
}

if ! answers; then
  clear_stale_pidfile /var/run/docker.pid dockerd
  clear_stale_pidfile /var/run/docker/containerd/containerd.pid containerd
  log "starting dockerd"
  mkdir -p /var/log
  nohup dockerd --iptables=false >/var/log/amlc-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do answers && break; sleep 0.5; done
  answers || { log "dockerd did not answer; see /var/log/amlc-dockerd.log"; tail -20 /var/log/amlc-dockerd.log >&2; exit 1; }
fi

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"
  exit 0
fi

log "building base image $BASE_IMAGE with debootstrap (about a minute)"
DIR=$(mktemp -d /var/tmp/amlc-rootfs.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
debootstrap --variant=minbase --include=python3,python3-numpy,ca-certificates bookworm "$DIR" "$MIRROR" >/var/tmp/amlc-debootstrap.log 2>&1 \
  || { tail -20 /var/tmp/amlc-debootstrap.log >&2; exit 1; }
rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/lib/apt/lists/*
tar -C "$DIR" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE_IMAGE" >/dev/null
log "base image $BASE_IMAGE built"
