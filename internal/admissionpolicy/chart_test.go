package admissionpolicy

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the chart's "+TemplatePath+" and "+MutatingTemplatePath+" from internal/policy's CEL")

// TestChartTemplateIsGenerated: the chart's admission policy is the one the
// catalog's CEL renders, as the README's rule table is the catalog's.
func TestChartTemplateIsGenerated(t *testing.T) {
	for path, want := range map[string]string{
		TemplatePath:         ChartTemplate(),
		MutatingTemplatePath: MutatingChartTemplate(),
	} {
		t.Run(path, func(t *testing.T) { assertGenerated(t, path, want) })
	}
}

func assertGenerated(t *testing.T, path, want string) {
	path = filepath.Join("..", "..", path)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
		return
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, want, string(got), "run go test ./internal/admissionpolicy -update")
}
