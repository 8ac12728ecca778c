//go:build !linux

package exepages

// Supported is true where Release does anything.
const Supported = false

// Release does nothing outside Linux.
func Release() (Stats, error) { return Stats{}, nil }
