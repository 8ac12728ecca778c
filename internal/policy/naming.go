package policy

import (
	"crypto/sha256"
	"encoding/hex"
)

// maxServiceName is the DNS-1035 label limit a Service name must fit.
const maxServiceName = 63

// HeadlessServiceName is the Service statekeeper gives a StatefulSet that names
// none: "<name>-headless", or, when that exceeds 63 characters, a truncated
// name with a stable hash of the full one so that two long names that share a
// prefix still get distinct Services.
func HeadlessServiceName(statefulSet string) string {
	const suffix = "-headless"
	name := statefulSet + suffix
	if len(name) <= maxServiceName {
		return name
	}
	sum := sha256.Sum256([]byte(statefulSet))
	hash := hex.EncodeToString(sum[:])[:8]
	// "<prefix>-<hash>-headless": prefix loses its trailing dashes so the
	// result stays a valid DNS label.
	keep := maxServiceName - len(suffix) - len(hash) - 1
	prefix := statefulSet[:keep]
	for len(prefix) > 0 && prefix[len(prefix)-1] == '-' {
		prefix = prefix[:len(prefix)-1]
	}
	return prefix + "-" + hash + suffix
}
