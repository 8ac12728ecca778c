package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHasControl: the eight-bytes-at-a-time test says what a byte-by-byte
// look says, for every byte value at every position of every length up to
// two words and a tail.
func TestHasControl(t *testing.T) {
	naive := func(b []byte) bool {
		for _, c := range b {
			if c < ' ' {
				return true
			}
		}
		return false
	}
	for n := 0; n <= 19; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte("abcdefghijklmnopqrstuvwxyz")[:n]
				b[pos] = byte(c)
				if got, want := hasControl(b), naive(b); got != want {
					assert.Equal(t, want, got, "%q", b)
				}
			}
		}
	}
	assert.False(t, hasControl([]byte(" ~\x7f\x80\xff  !!!!!!!!!!")))
}
