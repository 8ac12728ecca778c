// Package exepages hands back to the kernel the pages of statekeeper's own
// executable that only start-up used.
//
// A Go program's text and read-only data are mapped from its executable
// file. Start-up touches most of them: every package's init (client-go
// registers ~60 API groups' types, controller-runtime and the Prometheus
// client register theirs), flag parsing, the first list of every informer,
// and the kernel maps 64 KiB around each page fault (fault-around). Those
// pages stay mapped, and counted in the resident set, for the life of the
// process, although the steady state (watch events, admission reviews,
// reconciles) runs a small part of that code.
//
// Release drops this process's mappings of those pages, not the pages: they
// are clean copies of the executable file, kept by the page cache, and the
// next access to one maps it again from the page cache (a minor fault, no
// disk read while the page is cached; at worst a read of the file, as at
// start). So only what the steady state uses comes back. Release touches
// only mappings of the executable file that cannot be written (r-x and
// r--) and hold no page of their own (no anonymous, copy-on-write page: a
// relocated or debugger-patched page would be lost), so it discards nothing
// that cannot be read again from the file.
package exepages

// Stats says what Release found and dropped.
type Stats struct {
	// Mappings is the number of the executable's read-only mappings dropped.
	Mappings int
	// Before and After are the resident bytes of those mappings before and
	// right after Release.
	Before, After int64
}
