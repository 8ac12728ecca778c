package check

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statekeeper/statekeeper/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// podsDecisions are the decisions on testdata/pods.yaml: on stdout, or on
// stderr with -o yaml.
const podsDecisions = `allowed StatefulSet/default/redis: mutated (3 changes)
allowed Pod/default/redis-0: stamped redis-0.redis-headless.default.svc.cluster.local
allowed Pod/default/redis-1: stamped redis-1.redis-headless.default.svc.cluster.local
allowed StatefulSet/shop/cache: mutated (2 changes)
`

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		paths  []string
		stdin  string // a testdata file fed to stdin
		output string
		// namespace for objects without one; "default" when empty.
		namespace  string
		wantCode   int
		wantStdout string
		// goldenStdout names a testdata file holding the whole stdout instead.
		goldenStdout string
		wantStderr   string
	}{
		{
			name:     "single-instance workload with three replicas",
			paths:    []string{"testdata/single-instance.yaml"},
			wantCode: ExitDenied,
			wantStdout: `denied StatefulSet/shop/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
		},
		{
			name:     "kind switch while the Deployment runs with a claim",
			paths:    []string{"testdata/kind-switch-running.yaml"},
			wantCode: ExitDenied,
			wantStdout: `allowed Deployment/default/db
denied StatefulSet/default/db: deployment "db" (component "db") is running with persistent volumes; scale it to 0 and back up its data before creating statefulset "db" [kind-switch]
`,
		},
		{
			name:     "kind switch after the Deployment was scaled to 0",
			paths:    []string{"testdata/kind-switch-closed.yaml"},
			wantCode: ExitAllowed,
			wantStdout: `allowed Deployment/default/db
warning StatefulSet/default/db: deployment "db" (component "db") is scaled to 0 but keeps its data in claims "db-data"; statefulset "db" mounts storage differently and will not reuse them: back up the data first [kind-switch]
`,
		},
		{
			name:      "stdin, with another default namespace",
			paths:     []string{Stdin},
			stdin:     "testdata/single-instance.yaml",
			namespace: "ignored-as-the-object-names-one",
			wantCode:  ExitDenied,
			wantStdout: `denied StatefulSet/shop/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
		},
		{
			name:     "directory: files in name order, the namespace of the first applies to the second",
			paths:    []string{"testdata/dir"},
			wantCode: ExitAllowed,
			wantStdout: `warning Deployment/lab/cache: deployment "cache" is stateless-single: replicas must be 0 or 1, got 2 [single-instance]
allowed Deployment/default/api
`,
		},
		{
			name:     "two warnings, two lines",
			paths:    []string{"testdata/two-warnings.yaml"},
			wantCode: ExitAllowed,
			wantStdout: `warning StatefulSet/staging/etcd: statefulset "etcd" is stateful-single: replicas must be 0 or 1, got 2 [single-instance]
warning StatefulSet/staging/etcd: statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 2: use 1 or 3 [quorum]
`,
		},
		{
			name:      "the default namespace comes from --namespace",
			paths:     []string{"testdata/unknown-deploy-type.yaml"},
			namespace: "web",
			wantCode:  ExitDenied,
			wantStdout: `denied Deployment/web/web: deployment "web" has an invalid statekeeper.io/deploy-type label: unknown deploy type "stateless-many": must be one of "stateful-single", "stateful-multi", "stateless-single", "stateless-multi" [kind-mismatch]
`,
		},
		{
			name:     "HPAs of either version judged by their target",
			paths:    []string{"testdata/hpa.yaml"},
			wantCode: ExitDenied,
			wantStdout: `allowed Deployment/default/api
denied HorizontalPodAutoscaler/default/api: horizontalpodautoscaler "api" targets deployment "api", which is stateless-single: maxReplicas must be 1, got 3 [single-instance]
allowed HorizontalPodAutoscaler/default/api-v1
warning HorizontalPodAutoscaler/default/unmanaged: horizontalpodautoscaler "unmanaged" targets deployment "elsewhere", which does not exist yet: if it is created as stateless-single, it will be denied while maxReplicas is 5; set maxReplicas to 1, or create it as stateless-multi [single-instance]
`,
		},
		{
			// Helm installs HPAs before the workloads they scale.
			name:     "an HPA before its single-instance target: the target is denied, naming the HPA",
			paths:    []string{"testdata/hpa-first.yaml"},
			wantCode: ExitDenied,
			wantStdout: `warning HorizontalPodAutoscaler/default/db: horizontalpodautoscaler "db" targets statefulset "db", which does not exist yet: if it is created as stateful-single, it will be denied while maxReplicas is 3; set maxReplicas to 1, or create it as stateful-multi [single-instance]
denied StatefulSet/default/db: statefulset "db" is stateful-single, but horizontalpodautoscaler "db" scales it up to 3 replicas: set its maxReplicas to 1 or delete it first [single-instance]
`,
		},
		{
			name:     "mutations in lines: a ConfigMap prints nothing",
			paths:    []string{"testdata/redis.yaml"},
			wantCode: ExitAllowed,
			wantStdout: `allowed StatefulSet/default/redis: mutated (3 changes)
`,
		},
		{
			name:         "-o yaml prints the mutated objects and sends decisions to stderr",
			paths:        []string{"testdata/redis.yaml", "testdata/single-instance.yaml"},
			output:       OutputYAML,
			wantCode:     ExitDenied,
			goldenStdout: "testdata/redis.out.yaml",
			wantStderr: `allowed StatefulSet/default/redis: mutated (3 changes)
denied StatefulSet/shop/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
		},
		{
			name:       "pods of a stateful StatefulSet are stamped, others print nothing",
			paths:      []string{"testdata/pods.yaml"},
			wantCode:   ExitAllowed,
			wantStdout: podsDecisions,
		},
		{
			name:         "-o yaml prints stamped pods, and the headless Service after a StatefulSet that has none",
			paths:        []string{"testdata/pods.yaml"},
			output:       OutputYAML,
			wantCode:     ExitAllowed,
			goldenStdout: "testdata/pods.out.yaml",
			wantStderr:   podsDecisions,
		},
		{
			name:         "-o yaml: the Service of a stored StatefulSet names it as its owner",
			paths:        []string{"testdata/stored-statefulset.yaml"},
			output:       OutputYAML,
			wantCode:     ExitAllowed,
			goldenStdout: "testdata/stored-statefulset.out.yaml",
			wantStderr: `allowed StatefulSet/shop/db
`,
		},
		{
			name:     "unreadable documents are all named, and nothing is decided",
			paths:    []string{"testdata/bad.yaml", "testdata/single-instance.yaml"},
			wantCode: ExitInvalid,
			wantStderr: `error: testdata/bad.yaml: document 2: yaml: line 5: did not find expected ',' or ']'
error: testdata/bad.yaml: document 3: object has no apiVersion and no kind
`,
		},
		{
			name:     "a missing file and a path through a file",
			paths:    []string{"testdata/missing.yaml", "testdata/dir/README.txt/.."},
			wantCode: ExitInvalid,
			wantStderr: `error: testdata/missing.yaml: no such file or directory
error: testdata/dir/README.txt/..: not a directory
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := strings.NewReader("")
			if tt.stdin != "" {
				in, err := os.ReadFile(tt.stdin)
				require.NoError(t, err)
				stdin = strings.NewReader(string(in))
			}
			namespace := tt.namespace
			if namespace == "" {
				namespace = "default"
			}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), Options{
				Paths: tt.paths, Output: tt.output, Namespace: namespace,
				Settings: config.Default().ReviewSettings(),
			}, stdin, &stdout, &stderr)

			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantStderr, stderr.String())
			if tt.goldenStdout == "" {
				assert.Equal(t, tt.wantStdout, stdout.String())
				return
			}
			if *update {
				require.NoError(t, os.WriteFile(tt.goldenStdout, stdout.Bytes(), 0o644))
			}
			want, err := os.ReadFile(tt.goldenStdout)
			require.NoError(t, err, "run go test -update to create it")
			assert.Equal(t, string(want), stdout.String())
		})
	}
}

func TestEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), Options{Paths: []string{dir}, Namespace: "default", Settings: config.Default().ReviewSettings()},
		strings.NewReader(""), &stdout, &stderr)
	assert.Equal(t, ExitInvalid, code)
	assert.Equal(t, "error: "+dir+": directory holds no .yaml or .yml file\n", stderr.String())
	assert.Empty(t, stdout.String())
}

// FuzzReadSource feeds arbitrary bytes to the input reader: it must return
// documents or an error, never panic.
func FuzzReadSource(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(f, err)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap}\n- 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := readSource(Stdin, bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, d := range docs {
			assert.NotEmpty(t, d.gvk.Kind)
		}
	})
}

// TestYAMLOutputIsAFixedPoint: checking check's own -o yaml output gives the
// same objects, each once: the headless Service printed after a StatefulSet
// is not added a second time when the output is fed back.
func TestYAMLOutputIsAFixedPoint(t *testing.T) {
	for _, paths := range [][]string{
		{"testdata/redis.yaml"},
		{"testdata/pods.yaml"},
		{"testdata/stored-statefulset.yaml"},
		{"../../examples"},
	} {
		t.Run(strings.Join(paths, ","), func(t *testing.T) {
			first := runYAML(t, paths, "")
			require.Contains(t, first, "kind: Service", "the input gets a headless Service")
			again := runYAML(t, []string{Stdin}, first)
			assert.Equal(t, first, again)
		})
	}
}

// runYAML runs check -o yaml and returns stdout; the input must be allowed.
func runYAML(t *testing.T, paths []string, stdin string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), Options{
		Paths: paths, Output: OutputYAML, Namespace: "default", Settings: config.Default().ReviewSettings(),
	}, strings.NewReader(stdin), &stdout, &stderr)
	require.Equal(t, ExitAllowed, code, stderr.String())
	return stdout.String()
}

// TestYAMLOutputLeavesTheUsersBudget: a budget in the input that selects a
// stateful-multi StatefulSet's pods, before or after it, means none of the
// reconciler's (the eviction API refuses pods covered by two).
func TestYAMLOutputLeavesTheUsersBudget(t *testing.T) {
	const sts = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  labels: {statekeeper.io/deploy-type: stateful-multi}
spec:
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db}]}
`
	const budget = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: mine}
spec:
  maxUnavailable: 2
  selector: {matchLabels: {app: db}}
`
	alone := runYAML(t, []string{Stdin}, sts)
	docs := strings.Split(alone, "---\n")
	assert.Equal(t, `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  labels:
    app.kubernetes.io/managed-by: statekeeper
  name: db
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: db
  unhealthyPodEvictionPolicy: AlwaysAllow
`, docs[len(docs)-1], "the reconciler's budget, last")
	for _, input := range []string{budget + "---\n" + sts, sts + "---\n" + budget} {
		out := runYAML(t, []string{Stdin}, input)
		assert.Equal(t, 1, strings.Count(out, "kind: PodDisruptionBudget"), out)
		assert.NotContains(t, out, "managed-by: statekeeper\n  name: db\n")
	}
}
