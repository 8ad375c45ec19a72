#!/usr/bin/env bash
# The Docker engine and the local images that `--infra docker` and docker-compose.yml (with its override
# docker/compose.local.yml) run, idempotently (cached by image tag):
#   docker.io, docker-compose and debootstrap (Debian packages, as root); dockerd --bridge=none
#   --iptables=false in the background when no engine answers (log .tools/dockerd.log, pid
#   .tools/dockerd.pid); the base image harness-base:bookworm (debootstrap minbase | docker import: no image
#   registry is reachable here); harness-postgres:15, harness-toxiproxy:2.12.0, node-impl:latest,
#   harness-nginx:1.22 and harness-python:3.11 built FROM it with --network host; the reference service's
#   image outbox-sse-reference:local (the root Dockerfile) FROM harness-python:3.11. A cached image is not
#   rebuilt when the sources change: `docker rmi` it to have it built again.
# Every container runs on the host network and listens on 127.0.0.1 only.
#   bash scripts/docker_setup.sh        set up (each step timed)
#   bash scripts/docker_setup.sh stop   stop the dockerd this script started (nothing else)
set -euo pipefail
cd "$(dirname "$0")/.."
TOXIPROXY_VERSION=2.12.0
BASE=harness-base:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PID_FILE=.tools/dockerd.pid
say() { printf 'docker-setup: %s\n' "$*"; }
die() { printf 'docker-setup: error: %s\n' "$*" >&2; exit 1; }

# timed WHAT CMD...: run a step and say how long it took (the figures decide whether `make test` can afford it).
timed() {
  local what=$1 t0=${EPOCHREALTIME/./} dt
  shift
  "$@"
  dt=$(( ${EPOCHREALTIME/./} - t0 ))  # microseconds
  say "$what: $((dt / 1000000)).$((dt / 100000 % 10)) s"
}

SCRATCH=()  # temporary folders, removed however the script ends
trap 'rm -rf "${SCRATCH[@]}"' EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap runs on Ctrl-C and kill too
# scratch_dir NAME: a new temporary folder in $SCRATCH_DIR (not echoed: a subshell would not record it)
scratch_dir() { SCRATCH_DIR=$(mktemp -d "/tmp/harness-$1-XXXXXX"); SCRATCH+=("$SCRATCH_DIR"); }

is_root() { [ "$(id -u)" = 0 ]; }
engine_answers() { docker info >/dev/null 2>&1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} = 0 ] && return
  is_root || die "missing ${missing[*]}: run this script as root (sudo bash scripts/docker_setup.sh), or install them: sudo apt-get install ${missing[*]}"
  say "installing ${missing[*]} (Debian packages)"
  # No init system starts services here: policy-rc.d keeps the package scripts from trying.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >/dev/null || { rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed"; }
  rm -f /usr/sbin/policy-rc.d
}

start_engine() {
  engine_answers && return
  is_root || die "no Docker engine answers and starting one needs root: sudo bash scripts/docker_setup.sh"
  say "starting dockerd (log .tools/dockerd.log)"
  # Its own session: it outlives this script and is not stopped by a Ctrl-C meant for a test run.
  setsid dockerd --bridge=none --iptables=false >.tools/dockerd.log 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 60); do engine_answers && return; sleep 0.5; done
  die "dockerd did not answer within 30 s; see .tools/dockerd.log"
}

build_base() {
  have_image "$BASE" && return
  local root
  scratch_dir base && root=$SCRATCH_DIR
  say "building $BASE (debootstrap --variant=minbase bookworm)"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >.tools/debootstrap.log 2>&1 \
    || die "debootstrap failed; see .tools/debootstrap.log"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  # The host's own certificate authorities (a TLS-inspecting proxy's, say): an image that installs
  # ca-certificates then trusts them too, and npm (whose own list lacks them) is pointed at that bundle,
  # so a build reaches the registries the host reaches.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates" "$root/usr/etc"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    echo 'cafile=/etc/ssl/certs/ca-certificates.crt' | tee "$root/etc/npmrc" >"$root/usr/etc/npmrc"
  fi
  tar -C "$root" -c . | docker import - "$BASE" >/dev/null
}

# PostgreSQL 15 from Debian, initialised at build time (a container starts in about a second); the port
# and the server options are given at run time: PGPORT, and `-c key=value` arguments.
POSTGRES_DOCKERFILE='FROM harness-base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/*
USER postgres
RUN /usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/data --auth=trust -U postgres --no-sync \
      --encoding=UTF8 --locale=C --no-instructions >/dev/null
ENV PGPORT=5432
ENTRYPOINT ["/bin/sh", "-c", "exec /usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/data -h 127.0.0.1 -p \"$PGPORT\" -k /tmp \"$@\"", "postgres"]'

TOXIPROXY_DOCKERFILE='FROM harness-base:bookworm
COPY toxiproxy-server /usr/local/bin/toxiproxy-server
ENTRYPOINT ["/usr/local/bin/toxiproxy-server"]
CMD ["-host", "127.0.0.1", "-port", "8474"]'

# nginx from Debian (1.22), for docker-compose.yml's nginx; the configuration is mounted at run time.
NGINX_DOCKERFILE='FROM harness-base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nginx-light && rm -rf /var/lib/apt/lists/*
CMD ["nginx", "-g", "daemon off;"]'

# Debian's Python 3.11 as the root Dockerfile's BASE_IMAGE: `python` and `pip` of a venv on PATH (Debian's
# own pip refuses to install into the system, PEP 668); pip trusts the system bundle, which holds the
# host's certificate authorities (build_base).
PYTHON_DOCKERFILE='FROM harness-base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_CERT=/etc/ssl/certs/ca-certificates.crt'

# build_from_text TAG DOCKERFILE: an image whose Dockerfile needs no build context
build_from_text() {
  have_image "$1" && return
  say "building $1"
  docker build -q --force-rm --network host -t "$1" - <<<"$2" >/dev/null
}

build_toxiproxy() {
  have_image "harness-toxiproxy:$TOXIPROXY_VERSION" && return
  local bin=.tools/bin/toxiproxy-server context
  [ -x "$bin" ] || die "$bin is missing: run scripts/setup.sh first (it builds toxiproxy-server $TOXIPROXY_VERSION)"
  scratch_dir toxiproxy && context=$SCRATCH_DIR
  cp "$bin" "$context/" && printf '%s\n' "$TOXIPROXY_DOCKERFILE" >"$context/Dockerfile"
  say "building harness-toxiproxy:$TOXIPROXY_VERSION"
  docker build -q --force-rm --network host -t "harness-toxiproxy:$TOXIPROXY_VERSION" "$context" >/dev/null
}

build_node_impl() {
  have_image node-impl:latest && return
  say "building node-impl:latest"
  docker build -q --force-rm --network host -t node-impl:latest tests/targets/node_impl >/dev/null
}

build_reference() {
  have_image outbox-sse-reference:local && return
  say "building outbox-sse-reference:local (the root Dockerfile FROM harness-python:3.11)"
  docker build -q --force-rm --network host --build-arg BASE_IMAGE=harness-python:3.11 \
    -t outbox-sse-reference:local . >/dev/null
}

stop_engine() {
  [ -f "$PID_FILE" ] || { say "no dockerd started by this script (.tools/dockerd.pid is absent)"; return; }
  local pid
  pid=$(cat "$PID_FILE")
  if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/comm" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    say "stopped dockerd (pid $pid)"
  fi
  rm -f "$PID_FILE"
}

if [ "${1:-}" = stop ]; then stop_engine; exit 0; fi
mkdir -p .tools
timed "packages" install_packages
timed "engine" start_engine
timed "base image $BASE" build_base
timed "image harness-postgres:15" build_from_text harness-postgres:15 "$POSTGRES_DOCKERFILE"
timed "image harness-toxiproxy:$TOXIPROXY_VERSION" build_toxiproxy
timed "image node-impl:latest" build_node_impl
timed "image harness-nginx:1.22" build_from_text harness-nginx:1.22 "$NGINX_DOCKERFILE"
timed "image harness-python:3.11" build_from_text harness-python:3.11 "$PYTHON_DOCKERFILE"
timed "image outbox-sse-reference:local" build_reference
say "ready"
