#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine, and returns quickly on later
# runs. It installs Debian's PyTorch and scikit-learn for the example trainer and the npm
# packages, which bring Node 24 as the node@24 dev dependency. It builds kube-apiserver,
# etcd and helm from their Go modules into ~/.cache/trainjob-progress.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

install_debian_packages() {
  local missing=()
  /usr/bin/python3 -c 'import torch' 2>/dev/null || missing+=(python3-torch)
  /usr/bin/python3 -c 'import sklearn' 2>/dev/null || missing+=(python3-sklearn)
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${missing[*]}; install them as root: apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_npm_packages() {
  if [[ -f node_modules/.package-lock.json && node_modules/.package-lock.json -nt package-lock.json ]]; then
    return
  fi
  log 'installing npm packages (npm ci)'
  # The machine's own Node may be older than 24; the install brings Node 24 with it, so
  # npm's engine warnings about the running Node are expected and not shown.
  npm ci --no-audit --no-fund --loglevel=error >&2
}

command -v go >/dev/null || { log 'Go is required to build kube-apiserver, etcd and helm'; exit 1; }
install_debian_packages
install_npm_packages
bash test/control-plane/build-binaries.sh >/dev/null
log "Node $(npm exec --offline -- node --version), binaries ready"
