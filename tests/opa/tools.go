//go:build tools

// Package tools pins the OPA release the suite compares regate with (Rego semantics, peer benchmarks).
// `build.sh` builds its command; nothing here is compiled into regate.
package tools

import _ "github.com/open-policy-agent/opa"
