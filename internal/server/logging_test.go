package server

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statekeeper/statekeeper/internal/config"
)

// The log is buffered (one write per batch, not per admission decision);
// flush must write every line logged before it, and the lines must be the
// JSON the chart's log collection reads.
func TestLoggerFlushWritesEveryLine(t *testing.T) {
	var out bytes.Buffer
	log, flush, err := NewLogger(config.Default(), &out)
	require.NoError(t, err)
	for i := range 3 {
		log.Info("admission decision", "n", i)
	}
	require.NoError(t, flush())

	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	require.Len(t, lines, 3)
	for i, line := range lines {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			N     int    `json:"n"`
		}
		require.NoError(t, json.Unmarshal(line, &entry), "line %d: %s", i, line)
		assert.Equal(t, "info", entry.Level)
		assert.Equal(t, "admission decision", entry.Msg)
		assert.Equal(t, i, entry.N)
	}
}

// Admission decision lines leave out their caller (always the same line of
// the handler); every other line keeps it. Names and values stay.
func TestWithoutCallerKeepsTheRest(t *testing.T) {
	var out bytes.Buffer
	log, flush, err := NewLogger(config.Default(), &out)
	require.NoError(t, err)
	log = log.WithName("admission").WithValues("webhook", "/mutate")
	log.Info("with caller")
	WithoutCaller(log).Info("admission decision", "n", 1)
	require.NoError(t, flush())

	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var entries [2]map[string]any
	for i, line := range lines {
		require.NoError(t, json.Unmarshal(line, &entries[i]), "line %d: %s", i, line)
	}
	assert.Contains(t, entries[0], "caller")
	assert.NotContains(t, entries[1], "caller")
	assert.Equal(t, "admission", entries[1]["logger"])
	assert.Equal(t, "/mutate", entries[1]["webhook"])
	assert.Equal(t, 1.0, entries[1]["n"])
	assert.Equal(t, "admission decision", entries[1]["msg"])
}
