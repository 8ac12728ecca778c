//go:build faults

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// hostPrefix starts the name of every test host this suite makes.
const hostPrefix = "skf-"

// testHost is a network namespace with its own address, joined to this
// host by a veth pair (hack/testhost.sh).
type testHost struct {
	name string
	// hostAddr is this side of the pair: how the replica reaches the API server.
	hostAddr netip.Addr
	// addr is the replica's address: its endpoint.
	addr netip.Addr
}

// hostBlocks is how many /30 blocks 198.18.0.0/15 holds.
const hostBlocks = 1 << 15

// newTestHost claims a free block of 198.18.0.0/15 and makes the host on it;
// the name is the claim, so concurrent runs never share a block.
func newTestHost(ctx context.Context) (*testHost, error) {
	base := netip.MustParseAddr("198.18.0.0").As4()
	var lastErr error
	for range 20 {
		block := rand.IntN(hostBlocks)
		first := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(block)<<2
		h := &testHost{name: fmt.Sprintf("%s%d", hostPrefix, block), hostAddr: addrOf(first + 1), addr: addrOf(first + 2)}
		out, err := exec.CommandContext(ctx, testhostScript, "add", h.name, h.hostAddr.String(), h.addr.String(), fmt.Sprint(os.Getpid())).CombinedOutput()
		if err == nil {
			return h, nil
		}
		lastErr = fmt.Errorf("%s add %s: %w: %s", testhostScript, h.name, err, out)
		if !strings.Contains(string(out), "File exists") {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

func addrOf(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (h *testHost) remove() error {
	if out, err := exec.Command(testhostScript, "del", h.name).CombinedOutput(); err != nil {
		return fmt.Errorf("%s del %s: %w: %s", testhostScript, h.name, err, out)
	}
	return nil
}

// pruneTestHosts removes the hosts of earlier runs whose process is gone.
func pruneTestHosts(ctx context.Context) error {
	if out, err := exec.CommandContext(ctx, testhostScript, "prune", hostPrefix).CombinedOutput(); err != nil {
		return fmt.Errorf("%s prune: %w: %s", testhostScript, err, out)
	}
	return nil
}
