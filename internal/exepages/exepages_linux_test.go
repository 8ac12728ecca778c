//go:build linux

package exepages

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"unicode"
)

// rodataDigest reads a large table from the executable's read-only data.
func rodataDigest() [32]byte {
	h := sha256.New()
	for _, r := range unicode.Categories["L"].R16 {
		fmt.Fprint(h, r.Lo, r.Hi, r.Stride)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func TestReleaseDropsTheExecutablesPagesAndTheyComeBack(t *testing.T) {
	digest := rodataDigest()
	st, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("released %d mappings: %d KiB resident before, %d KiB after", st.Mappings, st.Before>>10, st.After>>10)
	if st.Mappings == 0 || st.Before == 0 {
		t.Fatalf("nothing released: %+v", st)
	}
	if st.After >= st.Before {
		t.Errorf("resident bytes of the executable did not fall: %+v", st)
	}
	// The code and data come back from the page cache, unchanged.
	if got := rodataDigest(); got != digest {
		t.Error("read-only data changed after Release")
	}
	b, err := json.Marshal(map[string]int{"a": 1})
	if err != nil || string(b) != `{"a":1}` {
		t.Errorf("json after Release: %s, %v", b, err)
	}
	// A second Release finds (at most) what was used since.
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
}

const smaps = `00400000-00c00000 r-xp 00000000 fd:01 1234                               /usr/bin/statekeeper
Size:               8192 kB
Rss:                6000 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw
00c00000-01400000 r--p 00800000 fd:01 1234                               /usr/bin/statekeeper
Size:               8192 kB
Rss:                5000 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
01400000-01500000 r--p 01000000 fd:01 1234                               /usr/bin/statekeeper
Rss:                  40 kB
Private_Dirty:         8 kB
Anonymous:             8 kB
01500000-01600000 rw-p 01100000 fd:01 1234                               /usr/bin/statekeeper
Rss:                 400 kB
Private_Dirty:       100 kB
Anonymous:           100 kB
01600000-01700000 rw-p 00000000 00:00 0
Rss:                 900 kB
Anonymous:           900 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 99                         /usr/lib/other.so
Rss:                  10 kB
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
`

func TestParseSmapsReleasesOnlyCleanReadOnlyMappingsOfTheExecutable(t *testing.T) {
	maps, err := parseSmaps([]byte(smaps), "/usr/bin/statekeeper")
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 4 {
		t.Fatalf("got %d mappings of the executable, want 4: %+v", len(maps), maps)
	}
	want := []struct {
		perms      string
		rss        int64
		releasable bool
	}{
		{"r-xp", 6000 << 10, true},
		{"r--p", 5000 << 10, true},
		{"r--p", 40 << 10, false}, // a page copied on write (relocated)
		{"rw-p", 400 << 10, false},
	}
	for i, w := range want {
		m := maps[i]
		if m.perms != w.perms || m.rss != w.rss || m.releasable() != w.releasable {
			t.Errorf("mapping %d: %+v (releasable %v), want %+v", i, m, m.releasable(), w)
		}
	}
	if maps[0].start != 0x400000 || maps[0].end != 0xc00000 {
		t.Errorf("mapping 0 spans %x-%x", maps[0].start, maps[0].end)
	}
}
