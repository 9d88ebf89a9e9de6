#!/usr/bin/env bash
# Builds kube-apiserver, etcd and helm from their Go modules into a cache outside the
# repository, once per pinned version. Each tool has a scratch module under go/ whose
# committed go.mod and go.sum pin the whole build list.
#
# Usage: build-binaries.sh [kube-apiserver|etcd|helm ...]   (default: all three)
# Prints the cache folder on its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${TRAINJOB_PROGRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainjob-progress}
bin_dir="$cache/bin"
mkdir -p "$bin_dir"

# Prints the version of module $2 that the scratch module $1 pins.
pinned_version() {
  (cd "$here/go/$1" && GOFLAGS=-mod=mod go list -m -f '{{.Version}}' "$2")
}
kube_version=$(pinned_version kube-apiserver k8s.io/kubernetes)
etcd_version=$(pinned_version etcd go.etcd.io/etcd/server/v3)
helm_version=$(pinned_version helm helm.sh/helm/v4)

log() { printf '[build-binaries] %s\n' "$*" >&2; }

# Prints a dot every 15 s so a 10-20 minute cold build does not look hung.
with_progress() {
  local started=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && log "  still building ($((SECONDS - started)) s)"
  done
  wait "$pid"
}

build_tool() {
  local name=$1 version=$2 package=$3 ldflags=$4
  local target="$bin_dir/$name-$version"
  if [[ -x "$target" ]]; then
    log "$name $version: cached at $target"
    return
  fi
  log "$name $version: building from its Go module (a cold build takes minutes)"
  local scratch="$cache/build/$name"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  cp "$here/go/$name/go.mod" "$here/go/$name/go.sum" "$scratch/"
  (
    cd "$scratch"
    with_progress env CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
      -tags selinux,notest,grpcnotrace -ldflags "-s -w $ldflags" -o "$target.tmp" "$package"
  )
  mv "$target.tmp" "$target"
  log "$name $version: built $target"
}

kube_ldflags() {
  local minor build_date flags=""
  minor=$(echo "$kube_version" | cut -d. -f2)
  build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $package.gitVersion=$kube_version -X $package.gitMajor=1"
    flags+=" -X $package.gitMinor=$minor -X $package.gitTreeState=clean"
    flags+=" -X $package.buildDate=$build_date"
  done
  echo "$flags"
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(kube-apiserver etcd helm)
for tool in "${tools[@]}"; do
  case "$tool" in
    kube-apiserver)
      build_tool kube-apiserver "$kube_version" k8s.io/kubernetes/cmd/kube-apiserver \
        "$(kube_ldflags)" ;;
    etcd)
      build_tool etcd "$etcd_version" go.etcd.io/etcd/server/v3 \
        "-X go.etcd.io/etcd/api/v3/version.GitSHA=release-$etcd_version" ;;
    helm)
      build_tool helm "$helm_version" helm.sh/helm/v4/cmd/helm \
        "-X helm.sh/helm/v4/internal/version.version=$helm_version" ;;
    *)
      log "unknown tool: $tool (expected kube-apiserver, etcd or helm)"
      exit 2 ;;
  esac
done
echo "$bin_dir"
