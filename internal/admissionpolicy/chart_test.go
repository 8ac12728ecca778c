package admissionpolicy

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the chart's "+TemplatePath+" from policy.CELValidations")

// TestChartTemplateIsGenerated: the chart's admission policy is the one the
// catalog's CEL renders, as the README's rule table is the catalog's.
func TestChartTemplateIsGenerated(t *testing.T) {
	path := filepath.Join("..", "..", TemplatePath)
	want := ChartTemplate()
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
		return
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, want, string(got), "run go test ./internal/admissionpolicy -update")
}
