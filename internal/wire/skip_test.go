package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIteratorFieldsFound: the skip reaches json-iterator's position; if a
// new version renamed the fields, skipping would silently fall back to the
// slower Skip.
func TestIteratorFieldsFound(t *testing.T) {
	require.True(t, iterator.ok)
}

// FuzzSkipMatchesValid: without escapes, skipValue takes a document, up to
// trailing whitespace, exactly when encoding/json finds it valid.
func FuzzSkipMatchesValid(f *testing.F) {
	for _, s := range []string{
		`{"name":"A","value":"1"}`, `[{"a":[1,-2.5e+3,true,false,null]},{}]`, ` "x" `, `01`, `1.`, `-`, `1e`, `[1,]`,
		`{"a":1,}`, `{"a" 1}`, "\"a\tb\"", `[[[[]]]]`, `tru`, `{"a":{"b":{"c":"d"}}}`, `{} {}`, `"\u00e9"`, `nul`,
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if bytes.IndexByte(doc, '\\') >= 0 {
			return // a borrowing body has no escapes
		}
		end, err := skipValue(doc, 0, maxDepth)
		took := err == nil && skipSpace(doc, end) == len(doc)
		assert.Equal(t, json.Valid(doc), took, "%q: skipped to %d: %v", doc, end, err)
	})
}

// TestSkipStringFindsTheFirstSpecialByte puts each byte that ends or spoils
// a string, and each that does not, at every offset of strings of every
// length up to three eight-byte words (the word loop and the tail loop),
// ahead of other special bytes.
func TestSkipStringFindsTheFirstSpecialByte(t *testing.T) {
	naive := func(b []byte) (int, error) {
		for i, c := range b {
			switch {
			case c == '"':
				return i + 1, nil
			case c == '\\':
				return i, errEscape
			case c < ' ':
				return i, errControl
			}
		}
		return len(b), errEnd
	}
	for n := range 24 {
		for _, c := range []byte{'"', '\\', 0x00, 0x01, 0x1f, ' ', '!', 0x7f, 0x80, 0xff} {
			for at := range n {
				for _, after := range []byte{'"', '\\', 0x01, 'a'} {
					b := bytes.Repeat([]byte{'a'}, n)
					b[at] = c
					if at+1 < n {
						b[at+1] = after
					}
					wantEnd, wantErr := naive(b)
					end, err := skipString(b, 0)
					assert.Equal(t, wantEnd, end, "%q", b)
					assert.Equal(t, wantErr, err, "%q", b)
				}
			}
		}
	}
}
