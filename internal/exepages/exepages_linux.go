//go:build linux

package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Supported is true where Release does anything.
const Supported = true

// Release drops the resident pages of this process's read-only, unmodified
// mappings of its own executable (madvise MADV_DONTNEED), so that they are
// counted again only once they are used again (see the package comment).
// Writable mappings, other files and anonymous memory are never touched.
func Release() (Stats, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Stats{}, fmt.Errorf("finding the executable: %w", err)
	}
	maps, err := readMappings(exe)
	if err != nil {
		return Stats{}, err
	}
	var st Stats
	for _, m := range maps {
		if !m.releasable() {
			continue
		}
		// MADV_DONTNEED on a private file mapping without anonymous pages
		// unmaps the page-cache pages; the next access faults them in
		// again from the page cache.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			return st, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, errno)
		}
		st.Mappings++
		st.Before += m.rss
	}
	after, err := readMappings(exe)
	if err != nil {
		return st, err
	}
	for _, m := range after {
		if m.readOnly() {
			st.After += m.rss
		}
	}
	return st, nil
}

// mapping is one mapping of the executable in /proc/self/smaps.
type mapping struct {
	start, end uintptr
	perms      string
	// rss and anonymous are in bytes.
	rss, anonymous int64
}

func (m mapping) readOnly() bool {
	return len(m.perms) == 4 && m.perms[0] == 'r' && m.perms[1] == '-' && m.perms[3] == 'p'
}

// releasable is a private read-only mapping whose resident pages are all
// the file's own, in the page cache: none was copied on write (a
// relocation, a debugger's breakpoint), which MADV_DONTNEED would discard.
// (Such a copy is counted as Anonymous; Private_Dirty also counts page-cache
// pages not yet written back, of an executable just built, which the page
// cache keeps.)
func (m mapping) releasable() bool {
	return m.readOnly() && m.rss > 0 && m.anonymous == 0
}

// readMappings reads the mappings of the file exe from /proc/self/smaps.
func readMappings(exe string) ([]mapping, error) {
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	return parseSmaps(data, exe)
}

// parseSmaps returns the mappings of path in an smaps file.
func parseSmaps(data []byte, path string) ([]mapping, error) {
	var out []mapping
	var cur *mapping
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if key, ok := strings.CutSuffix(fields[0], ":"); ok && !strings.Contains(fields[0], "-") {
			// "Rss:  1234 kB" of the current mapping.
			if cur == nil || len(fields) < 2 {
				continue
			}
			var dst *int64
			switch key {
			case "Rss":
				dst = &cur.rss
			case "Anonymous":
				dst = &cur.anonymous
			default:
				continue
			}
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps: %q: %w", line, err)
			}
			*dst = kb << 10
			continue
		}
		// A mapping's header: "start-end perms offset dev inode [path]".
		cur = nil
		if len(fields) < 6 || strings.Join(fields[5:], " ") != path {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("smaps: %q: no address range", line)
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("smaps: %q: bad address range", line)
		}
		out = append(out, mapping{start: uintptr(start), end: uintptr(end), perms: fields[1]})
		cur = &out[len(out)-1]
	}
	return out, sc.Err()
}
