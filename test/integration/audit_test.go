package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// statekeeperUser is the user statekeeper runs as in the suite.
const statekeeperUser = "statekeeper"

// auditPolicy records every request of statekeeper's user, once it has been
// answered, and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["` + statekeeperUser + `"]
  - level: None
`

// auditLog is the API server's own record of statekeeper's requests: an
// exact count per client, which the apiserver_request_total metric (no user
// label) cannot give.
type auditLog struct {
	dir, path string
}

// configureAuditLog turns the API server's audit log on, before it starts.
func configureAuditLog(apiServer *envtest.APIServer) (*auditLog, error) {
	dir, err := os.MkdirTemp("", "statekeeper-audit-")
	if err != nil {
		return nil, err
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	log := &auditLog{dir: dir, path: filepath.Join(dir, "audit.log")}
	// The log backend's default mode is blocking: an event is written
	// before the request it records returns.
	apiServer.Configure().Set("audit-policy-file", policy).Set("audit-log-path", log.path)
	return log, nil
}

func (a *auditLog) remove() { _ = os.RemoveAll(a.dir) }

// auditEvent is the part of an audit.k8s.io/v1 Event the tests read.
type auditEvent struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	URI   string `json:"requestURI"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
}

func (e auditEvent) String() string {
	return fmt.Sprintf("%s %s", strings.ToUpper(e.Verb), e.URI)
}

// mark makes a request as statekeeper's user that names a namespace nobody
// has, and returns that name once the API server has logged the request.
// Every request that statekeeper completed before mark was called is in the
// log before the mark.
func (a *auditLog) mark(t *testing.T) string {
	t.Helper()
	// The tests' REST mapper: a client of its own would discover the API
	// first, GETs that would count as statekeeper's.
	c, err := client.New(shared.statekeeper, client.Options{Scheme: shared.scheme, Mapper: shared.mapper})
	require.NoError(t, err)
	name := "audit-mark-" + rand.String(8)
	err = c.Get(t.Context(), client.ObjectKey{Name: name}, &corev1.Namespace{})
	require.True(t, apierrors.IsNotFound(err), "the mark request: %v", err)
	require.Eventually(t, func() bool { _, found := a.between(t, name, ""); return found }, settleTimeout, settlePoll,
		"the audit log never recorded the mark %s", name)
	return name
}

// between returns statekeeper's completed requests logged after the mark
// request from (from the start when empty) and before the one to (to the end
// when empty), the marks excluded; found says whether the marks were there.
func (a *auditLog) between(t *testing.T, from, to string) (events []auditEvent, found bool) {
	t.Helper()
	data, err := os.ReadFile(a.path)
	require.NoError(t, err)
	inside := from == ""
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for scanner.Scan() {
		var e auditEvent
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			continue // a line the API server is still writing
		}
		if e.Stage != "ResponseComplete" || e.User.Username != statekeeperUser {
			continue
		}
		if e.ObjectRef != nil && e.ObjectRef.Resource == "namespaces" && e.ObjectRef.Name != "" {
			switch e.ObjectRef.Name {
			case from:
				inside = true
				continue
			case to:
				return events, inside
			}
		}
		if inside {
			events = append(events, e)
		}
	}
	require.NoError(t, scanner.Err())
	return events, inside && to == ""
}
