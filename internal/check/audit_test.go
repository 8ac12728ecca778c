package check

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/review"
)

// TestAuditLinesAreTheAuditsFindings: in an audit namespace, check prints
// what `statekeeper audit` finds in a cluster holding the same objects (in
// audit mode they are stored as written).
func TestAuditLinesAreTheAuditsFindings(t *testing.T) {
	ctx := context.Background()
	settings := review.SettingsFrom(config.Default())
	const input = "testdata/audit.yaml"

	var stdout, stderr bytes.Buffer
	code := Run(ctx, Options{Paths: []string{input}, Namespace: "default", Settings: settings}, nil, &stdout, &stderr)
	require.Equal(t, ExitAllowed, code, stderr.String())
	var fromCheck []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if strings.HasPrefix(line, "audit ") {
			fromCheck = append(fromCheck, line)
		}
	}

	docs, err := readDocuments([]string{input}, false, nil)
	require.NoError(t, err)
	var objects []client.Object
	for _, doc := range docs {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc.json, nil, nil)
		require.NoError(t, err)
		objects = append(objects, obj.(client.Object))
	}
	cluster := fake.NewClientBuilder().WithObjects(objects...).Build()
	snap, err := audit.Read(ctx, cluster, "legacy")
	require.NoError(t, err)
	found, err := audit.Namespace(ctx, review.New(snap.Lookup(), settings), snap, "legacy")
	require.NoError(t, err)
	var fromAudit []string
	for _, f := range found.Findings {
		fromAudit = append(fromAudit, fmt.Sprintf("audit %s %s: %s [%s]", f.Result, f.Object, f.Message, f.Rule))
	}

	require.NotEmpty(t, fromAudit)
	slices.Sort(fromCheck)
	slices.Sort(fromAudit)
	assert.Equal(t, fromAudit, fromCheck)
}
