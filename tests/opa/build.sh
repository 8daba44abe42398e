#!/usr/bin/env bash
# Builds the pinned OPA release (tests/opa/go.mod) into $1 (default: target/opa/opa): the reference for
# Rego semantics (the OPA differential test) and the peer in scripts/bench-peers.sh. The version is stamped
# as OPA's release build does, so `opa version` names it. Go's build cache makes a rebuild a link step;
# a cold build takes a few minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../target/opa/opa}"
version="$(sed -n 's|^require github.com/open-policy-agent/opa \(v[0-9.]*\)$|\1|p' "$here/go.mod")"
mkdir -p "$(dirname "$out")"
cd "$here"
exec go build -trimpath -ldflags "-X github.com/open-policy-agent/opa/v1/version.Version=${version#v}" \
    -o "$out" github.com/open-policy-agent/opa
