#!/usr/bin/env bash
# Installs what the harness needs on a fresh machine, idempotently, and says what is missing when it can't:
#   .venv (Python packages), .tools/bin/toxiproxy-server (go install), .tools/bin/replay-server (go build), patch, nginx, chromium, promtool and tmux
#   (Debian packages, as root), the Node.js target's npm packages. Under CI (or pytest --strict-tools) a test whose tool is missing fails.
set -euo pipefail
cd "$(dirname "$0")/.."
TOXIPROXY_VERSION=2.12.0
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

setup_venv() {
  local py=${PYTHON:-python3}
  command -v "$py" >/dev/null || die "python3 (>= 3.11) not found; install it (Debian: apt-get install python3 python3-venv)"
  python_ok "$py" || die "$py is older than 3.11; set PYTHON=/path/to/python3.11+"
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$py" -m venv .venv || die "python venv failed; on Debian: apt-get install python3-venv"
  fi
  # Reinstall only when pyproject.toml changed since the last install.
  local stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
  if [ ! -e "$stamp" ]; then
    say "installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test]'
    rm -f .venv/.installed-*; touch "$stamp"
  fi
}

setup_toxiproxy() {
  if [ -n "${TOXIPROXY_URL:-}" ]; then say "using toxiproxy at $TOXIPROXY_URL"; return; fi
  local bin=.tools/bin/toxiproxy-server
  if [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -q "$TOXIPROXY_VERSION"; then return; fi
  if command -v toxiproxy-server >/dev/null && toxiproxy-server -version 2>/dev/null | grep -q "$TOXIPROXY_VERSION"; then return; fi
  command -v go >/dev/null || die "toxiproxy-server $TOXIPROXY_VERSION not found and Go is missing: install Go (https://go.dev/dl), put toxiproxy-server on PATH, or set TOXIPROXY_URL"
  say "building toxiproxy-server $TOXIPROXY_VERSION with go install"
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" go install \
    -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@v$TOXIPROXY_VERSION"
  mv .tools/bin/server "$bin"
}

# The replay-only SSE server of the generator-ceiling benchmark: standard library only, so no download.
setup_replay_server() {
  local bin=.tools/bin/replay-server src=tools/replay_server
  if [ -x "$bin" ] && [ -z "$(find $src -newer "$bin" -name '*.go' -o -newer "$bin" -name go.mod)" ]; then return; fi
  command -v go >/dev/null || { say "warning: Go is missing; the replay server (harness bench --only generator) cannot be built"; return 0; }
  say "building replay-server with go build"
  mkdir -p .tools/bin
  (cd $src && go build -o ../../$bin .)
}

# apt_tool PROBE PACKAGE WHAT: install a Debian package when PROBE fails, as root; otherwise say what to do.
apt_tool() {
  local probe=$1 package=$2 what=$3
  eval "$probe" && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $package (Debian package; $what)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package"; } >/dev/null \
      || die "apt-get install $package failed"
  else
    say "warning: $package is missing; without it $what cannot run. Install it: sudo apt-get install $package"
  fi
}

setup_patch() { apt_tool 'command -v patch >/dev/null' patch "the mutant kill matrix and the mutant manifest tests"; }
setup_nginx() { apt_tool 'command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]' nginx-light "the proxy-buffering scenarios"; }
setup_chromium() { apt_tool '[ -x /usr/bin/chromium ]' chromium "the browser scenario (Playwright drives it, no browser download)"; }
setup_promtool() { apt_tool 'command -v promtool >/dev/null' prometheus "the alert-rules test (promtool)"; }
setup_tmux() { apt_tool 'command -v tmux >/dev/null' tmux "the harness watch test (it reads a terminal screen)"; }

# The Node.js target (tests/targets/node_impl): its npm packages, pinned by package-lock.json.
setup_node_target() {
  local dir=tests/targets/node_impl
  apt_tool 'command -v node >/dev/null && command -v npm >/dev/null' nodejs "the Node.js target's tests"
  command -v npm >/dev/null || { apt_tool 'command -v npm >/dev/null' npm "the Node.js target's tests"; }
  command -v npm >/dev/null || return 0
  local stamp=$dir/node_modules/.installed-$(sha1sum $dir/package-lock.json | cut -c1-12)
  if [ ! -e "$stamp" ]; then
    say "installing the Node.js target's packages (npm ci)"
    (cd $dir && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in $dir failed"
    touch "$stamp"
  fi
}

setup_venv
setup_toxiproxy
setup_replay_server
setup_patch
setup_nginx
setup_chromium
setup_promtool
setup_tmux
setup_node_target
say "ready"
