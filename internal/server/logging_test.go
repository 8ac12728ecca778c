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
