package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"reflect"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
)

// Skipping the container fields policy does not read (template.go) is most
// of reading a large workload's review, and json-iterator skips a byte at a
// time. skipUnread scans the value in the body itself, a string's bytes
// eight at a time, checking the value as JSON as the stock decoder would.
//
// That needs the iterator's position, which json-iterator does not export:
// iterator finds its buffer, position and nesting depth by name once, and
// without them (another json-iterator version) the value is left to
// json-iterator's own Skip. It is used only by the borrowing reader, whose
// body has no escapes and is all in the iterator's buffer.

// maxDepth is the nesting the stock decoder and json-iterator allow.
const maxDepth = 10000

// iterator is where json-iterator's Iterator keeps its state.
var iterator = func() (fields struct {
	buf, reader, head, tail, depth uintptr
	ok                             bool
}) {
	t := reflect.TypeFor[jsoniter.Iterator]()
	for name, want := range map[string]struct {
		offset *uintptr
		kind   reflect.Kind
	}{
		"buf": {&fields.buf, reflect.Slice}, "reader": {&fields.reader, reflect.Interface},
		"head": {&fields.head, reflect.Int}, "tail": {&fields.tail, reflect.Int}, "depth": {&fields.depth, reflect.Int},
	} {
		f, ok := t.FieldByName(name)
		if !ok || f.Type.Kind() != want.kind {
			return fields
		}
		*want.offset = f.Offset
	}
	fields.ok = true
	return fields
}()

// skipUnread skips the next value, checked as JSON.
type skipUnread struct{}

func (skipUnread) Decode(_ unsafe.Pointer, it *jsoniter.Iterator) {
	p := unsafe.Pointer(it)
	if !iterator.ok || *(*any)(unsafe.Add(p, iterator.reader)) != nil {
		it.Skip()
		return
	}
	buf := *(*[]byte)(unsafe.Add(p, iterator.buf))
	head := (*int)(unsafe.Add(p, iterator.head))
	tail := *(*int)(unsafe.Add(p, iterator.tail))
	depth := *(*int)(unsafe.Add(p, iterator.depth))
	end, err := skipValue(buf[:tail], *head, maxDepth-depth)
	if err != nil {
		it.ReportError("skip", err.Error())
		return
	}
	*head = end
}

var (
	errEnd     = errors.New("unexpected end of JSON input")
	errSyntax  = errors.New("invalid JSON")
	errDepth   = errors.New("exceeded max depth")
	errControl = errors.New("invalid control character in string")
	errEscape  = errors.New("escaped string") // never in a borrowing body
)

// skipValue returns the end of the JSON value at b[i:], leading whitespace
// included; depth is how many more arrays or objects may nest.
func skipValue(b []byte, i, depth int) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return i, errEnd
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i+1)
	case c == '{' || c == '[':
		if depth == 0 {
			return i, errDepth
		}
		return skipContainer(b, i, depth-1)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		return skipNumber(b, i)
	default:
		return i, errSyntax
	}
}

// skipContainer skips the object or array that opens at b[i].
func skipContainer(b []byte, i, depth int) (int, error) {
	closing, object := byte(']'), b[i] == '{'
	if object {
		closing = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1, nil
	}
	for {
		var err error
		if object {
			if i >= len(b) || b[i] != '"' {
				return i, errSyntax
			}
			if i, err = skipString(b, i+1); err != nil {
				return i, err
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return i, errSyntax
			}
			i++
		}
		if i, err = skipValue(b, i, depth); err != nil {
			return i, err
		}
		switch i = skipSpace(b, i); {
		case i >= len(b):
			return i, errEnd
		case b[i] == closing:
			return i + 1, nil
		case b[i] != ',':
			return i, errSyntax
		}
		i = skipSpace(b, i+1)
	}
}

// skipString skips a string whose opening quote is before b[i]. It looks
// at eight bytes at a time for the first that is a quote, a backslash or
// below 0x20 (each the classic "has a byte equal to / less than n" test,
// whose lowest flagged byte is always a true one); only a quote may end it.
func skipString(b []byte, i int) (int, error) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		special := ((quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*' ')&^x) & highs
		if special != 0 {
			end := i + bits.TrailingZeros64(special)/8
			if b[end] == '"' { // the usual end, without a call
				return end + 1, nil
			}
			return stringEnd(b, end)
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < ' ' {
			return stringEnd(b, i)
		}
	}
	return len(b), errEnd
}

// stringEnd judges the first special byte of a string, at b[i].
func stringEnd(b []byte, i int) (int, error) {
	switch b[i] {
	case '"':
		return i + 1, nil
	case '\\':
		return i, errEscape
	default:
		return i, errControl
	}
}

func skipLiteral(b []byte, i int, literal string) (int, error) {
	if !bytes.HasPrefix(b[i:], []byte(literal)) {
		return i, errSyntax
	}
	return i + len(literal), nil
}

// skipNumber skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; what
// follows is the caller's to check.
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, errSyntax
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, errSyntax
		}
		i = j
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func skipSpace(b []byte, i int) int {
	// Bodies rarely have whitespace between tokens: one comparison says so.
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}
