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
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// podsDecisions are the decisions on testdata/pods.yaml: on stdout, or on
// stderr with -o yaml.
// The pods come after every StatefulSet: their controller creates them.
const podsDecisions = `allowed StatefulSet/default/redis: mutated (3 changes)
allowed StatefulSet/shop/cache: mutated (2 changes)
allowed Pod/default/redis-0: stamped redis-0.redis-headless.default.svc.cluster.local
allowed Pod/default/redis-1: stamped redis-1.redis-headless.default.svc.cluster.local
`

// The pairs of an HPA and the single-instance workload it scales, whichever
// comes first in the input: Helm installs Deployments, then HPAs, then
// StatefulSets, and the API server refuses the second of each pair.
const (
	hpaStatefulSetPair = `allowed HorizontalPodAutoscaler/default/db
denied StatefulSet/default/db: statefulset "db" is stateful-single, but horizontalpodautoscaler "db" scales it up to 3 replicas: set its maxReplicas to 1 or delete it first [single-instance]
`
	hpaDeploymentPair = `allowed Deployment/default/api
denied HorizontalPodAutoscaler/default/api: horizontalpodautoscaler "api" targets deployment "api", which is stateless-single: maxReplicas must be 1, got 3 [single-instance]
`
)

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		stdin string // a testdata file fed to stdin
		// recursive is -R.
		recursive bool
		output    string
		// defaultMode is --default-mode; enforce when empty.
		defaultMode policy.Mode
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
			name:     "directory: its .json, .yaml and .yml files, not its subdirectories",
			paths:    []string{"testdata/mixed"},
			wantCode: ExitAllowed,
			wantStdout: `warning Deployment/lab/cache: deployment "cache" is stateless-single: replicas must be 0 or 1, got 2 [single-instance]
allowed Deployment/default/api
`,
		},
		{
			name:      "-R: the subdirectories too",
			paths:     []string{"testdata/mixed"},
			recursive: true,
			wantCode:  ExitDenied,
			wantStdout: `warning Deployment/lab/cache: deployment "cache" is stateless-single: replicas must be 0 or 1, got 2 [single-instance]
allowed Deployment/default/api
denied StatefulSet/default/db: statefulset "db" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
		},
		{
			name:     "a directory with only subdirectories, without -R",
			paths:    []string{"testdata/release-tree"},
			wantCode: ExitInvalid,
			wantStderr: `error: testdata/release-tree: directory holds no .json, .yaml or .yml file; its subdirectories are read with -R
`,
		},
		{
			name:     "a JSON stream: every object is judged, the denial in the third too",
			paths:    []string{"testdata/stream.json"},
			wantCode: ExitDenied,
			wantStdout: `allowed Deployment/default/web
allowed Deployment/default/worker
denied StatefulSet/default/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
		},
		{
			name:     "a JSON stream on stdin with no whitespace between the objects",
			paths:    []string{Stdin},
			stdin:    "testdata/compact.json",
			wantCode: ExitDenied,
			wantStdout: `allowed Deployment/default/worker
denied StatefulSet/default/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
		},
		{
			name:     "a JSON stream: an object without kind is named and passed, a syntax error ends the stream",
			paths:    []string{"testdata/broken.json"},
			wantCode: ExitInvalid,
			wantStdout: `allowed Deployment/default/web
denied StatefulSet/default/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
			wantStderr: `error: testdata/broken.json:34: object 2: object has no kind
error: testdata/broken.json:74: object 4: line 78, column 17: invalid character '}' looking for beginning of value; nothing after it in testdata/broken.json is read
`,
		},
		{
			name:     "a v1 List, with a List inside",
			paths:    []string{"testdata/list.yaml"},
			wantCode: ExitDenied,
			wantStdout: `allowed Deployment/default/api
denied StatefulSet/default/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 2 [single-instance]
`,
		},
		{
			name:     "a DeploymentList whose items carry no kind, as the API server returns it",
			paths:    []string{"testdata/deployment-list.json"},
			wantCode: ExitDenied,
			wantStdout: `allowed Deployment/default/api
denied Deployment/default/cache: deployment "cache" is stateless-single: replicas must be 0 or 1, got 2 [single-instance]
`,
		},
		{
			name:     "a broken document and a broken List item in the middle: named, and the others judged",
			paths:    []string{"testdata/broken-middle.yaml"},
			wantCode: ExitInvalid,
			wantStdout: `denied Deployment/default/cache: deployment "cache" is stateless-single: replicas must be 0 or 1, got 2 [single-instance]
allowed StatefulSet/default/db: mutated (1 change)
`,
			wantStderr: `error: testdata/broken-middle.yaml:15: document 2: yaml: line 19: did not find expected ',' or '}'
error: testdata/broken-middle.yaml:22: document 3, items[1]: not an object: a manifest is a mapping with apiVersion and kind
`,
		},
		{
			name:     "an audit namespace: what the audit records, and exit 0",
			paths:    []string{"testdata/audit.yaml"},
			wantCode: ExitAllowed,
			wantStdout: `allowed Deployment/legacy/api
audit fail HorizontalPodAutoscaler/legacy/db: horizontalpodautoscaler "db" targets statefulset "db", which is stateful-single: maxReplicas must be 1, got 3 [single-instance]
audit fail StatefulSet/legacy/db: statefulset "db" is stateful-single: replicas must be 0 or 1, got 2 [single-instance]
audit fail StatefulSet/legacy/db: service "db" named by spec.serviceName of statefulset "db" does not exist, so its pods get no per-pod DNS names; statekeeper creates it in enforce and warn namespaces (in audit mode create it yourself, headless: clusterIP: None) [headless-missing]
`,
		},
		{
			name:        "--default-mode audit: the same for namespaces without a mode",
			paths:       []string{"testdata/single-instance.yaml"},
			defaultMode: policy.ModeAudit,
			wantCode:    ExitAllowed,
			wantStdout: `audit fail StatefulSet/shop/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
audit fail StatefulSet/shop/mysql: service "mysql" named by spec.serviceName of statefulset "mysql" does not exist, so its pods get no per-pod DNS names; statekeeper creates it in enforce and warn namespaces (in audit mode create it yourself, headless: clusterIP: None) [headless-missing]
`,
		},
		{
			name:     "two warnings, two lines",
			paths:    []string{"testdata/two-warnings.yaml"},
			wantCode: ExitAllowed,
			wantStdout: `warning StatefulSet/staging/etcd: statefulset "etcd" is stateful-single: replicas must be 0 or 1, got 2 [single-instance]
warning StatefulSet/staging/etcd: statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 2: use 1 or 3; if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes [quorum]
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
			// Helm installs HPAs before StatefulSets: the HPA is admitted,
			// the StatefulSet denied.
			name:       "an HPA before its single-instance StatefulSet: one problem, on the StatefulSet",
			paths:      []string{"testdata/hpa-first.yaml"},
			wantCode:   ExitDenied,
			wantStdout: hpaStatefulSetPair,
		},
		{
			name:       "an HPA after its single-instance StatefulSet: the same, in Helm's order",
			paths:      []string{"testdata/hpa-statefulset-first.yaml"},
			wantCode:   ExitDenied,
			wantStdout: hpaStatefulSetPair,
		},
		{
			// Helm installs Deployments before HPAs: the HPA is denied.
			name:       "an HPA after its single-instance Deployment: one problem, on the HPA",
			paths:      []string{"testdata/hpa-deployment-first.yaml"},
			wantCode:   ExitDenied,
			wantStdout: hpaDeploymentPair,
		},
		{
			name:       "an HPA before its single-instance Deployment: the same, in Helm's order",
			paths:      []string{"testdata/hpa-deployment-last.yaml"},
			wantCode:   ExitDenied,
			wantStdout: hpaDeploymentPair,
		},
		{
			name:     "HPAs before a stateful-multi target and an unmanaged one: not warned of as missing",
			paths:    []string{"testdata/hpa-later-targets.yaml"},
			wantCode: ExitAllowed,
			wantStdout: `allowed HorizontalPodAutoscaler/default/queue
allowed StatefulSet/default/queue: mutated (1 change)
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
omitted StatefulSet/shop/mysql: denied, so the API server would not store it
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
			name:     "unreadable documents are all named, and the others decided",
			paths:    []string{"testdata/bad.yaml", "testdata/single-instance.yaml"},
			wantCode: ExitInvalid,
			wantStdout: `denied StatefulSet/shop/mysql: statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]
`,
			wantStderr: `error: testdata/bad.yaml:6: document 2: yaml: line 10: did not find expected ',' or ']'
error: testdata/bad.yaml:12: document 3: object has no apiVersion and no kind
`,
		},
		{
			name:     "a missing file and a path through a file",
			paths:    []string{"testdata/missing.yaml", "testdata/mixed/README.md/.."},
			wantCode: ExitInvalid,
			wantStderr: `error: testdata/missing.yaml: no such file or directory
error: testdata/mixed/README.md/..: not a directory
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
			settings := review.SettingsFrom(config.Default())
			if tt.defaultMode != "" {
				settings.DefaultMode = tt.defaultMode
			}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), Options{
				Paths: tt.paths, Recursive: tt.recursive, Output: tt.output, Namespace: namespace,
				Settings: settings,
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
	code := Run(context.Background(), Options{Paths: []string{dir}, Namespace: "default", Settings: review.SettingsFrom(config.Default())},
		strings.NewReader(""), &stdout, &stderr)
	assert.Equal(t, ExitInvalid, code)
	assert.Equal(t, "error: "+dir+": directory holds no .json, .yaml or .yml file\n", stderr.String())
	assert.Empty(t, stdout.String())
}

// FuzzReadSource feeds arbitrary bytes to the input reader: it must return
// documents or an error, never panic.
func FuzzReadSource(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(f, err)
	streams, err := filepath.Glob("testdata/*.json")
	require.NoError(f, err)
	files = append(files, streams...)
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
		Paths: paths, Output: OutputYAML, Namespace: "default", Settings: review.SettingsFrom(config.Default()),
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
`, docs[0], "the reconciler's budget, first: budgets come first in Helm's order")
	for _, input := range []string{budget + "---\n" + sts, sts + "---\n" + budget} {
		out := runYAML(t, []string{Stdin}, input)
		assert.Equal(t, 1, strings.Count(out, "kind: PodDisruptionBudget"), out)
		assert.NotContains(t, out, "managed-by: statekeeper\n  name: db\n")
	}
}

// TestHelmOrder: a `helm template` stream, the same objects as an
// `--output-dir` tree whose file order is not Helm's, and its files named one
// by one in yet another order, get the decisions of Helm's install order.
// (Within a kind the input's order is kept, as Helm keeps its templates'.)
func TestHelmOrder(t *testing.T) {
	const want = `warning Deployment/lab/cache: deployment "cache" is stateless-single: replicas must be 0 or 1, got 2 [single-instance]
allowed Deployment/default/web
allowed HorizontalPodAutoscaler/default/web
allowed HorizontalPodAutoscaler/default/db
denied StatefulSet/default/db: statefulset "db" is stateful-single, but horizontalpodautoscaler "db" scales it up to 3 replicas: set its maxReplicas to 1 or delete it first [single-instance]
`
	const templates = "testdata/release-tree/shop/templates/"
	shuffled := []string{
		templates + "zz-namespace.yaml", templates + "db.yaml", templates + "hpa.yaml", templates + "configmap.yaml",
		"testdata/release-tree/shop/charts/cache/templates/deployment.yaml", templates + "web.yaml",
	}
	for _, tt := range []struct {
		name      string
		paths     []string
		recursive bool
		stdin     string
	}{
		{name: "stream", paths: []string{"testdata/release.yaml"}},
		{name: "tree", paths: []string{"testdata/release-tree"}, recursive: true},
		{name: "files in another order", paths: shuffled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), Options{
				Paths: tt.paths, Recursive: tt.recursive, Namespace: "default", Settings: review.SettingsFrom(config.Default()),
			}, strings.NewReader(tt.stdin), &stdout, &stderr)
			assert.Equal(t, ExitDenied, code)
			assert.Equal(t, want, stdout.String())
			assert.Empty(t, stderr.String())
		})
	}
}

// TestReadSource holds what each form of input reads as: the objects by
// kind and name, and the errors, for the forms the YAML parser alone would
// cut short.
func TestReadSource(t *testing.T) {
	const configMap = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"}}`
	cm := func(name string) string { return strings.ReplaceAll(configMap, "%s", name) }
	tests := []struct {
		name       string
		input      string
		wantRefs   []string
		wantErrors []string
	}{
		{
			name:     "JSON objects separated by newlines",
			input:    cm("a") + "\n" + cm("b") + "\n",
			wantRefs: []string{"stdin:1: object 1 ConfigMap/a", "stdin:2: object 2 ConfigMap/b"},
		},
		{
			name:     "one JSON object, then YAML documents, as kubectl reads them",
			input:    cm("a") + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
			wantRefs: []string{"stdin:1: object 1 ConfigMap/a", "stdin:3: document 2 ConfigMap/b"},
		},
		{
			name:       "JSON objects in a YAML document after a comment: not cut to the first",
			input:      "# generated\n" + cm("a") + cm("b") + "\n---\n" + cm("c") + "\n",
			wantRefs:   []string{"stdin:4: document 2 ConfigMap/c"},
			wantErrors: []string{`stdin:1: document 1: more than one object in one YAML document: separate them with a line "---"`},
		},
		{
			name:       "a document after a YAML end marker",
			input:      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n...\napiVersion: v1\n",
			wantErrors: []string{`stdin:1: document 1: more than one object in one YAML document: separate them with a line "---"`},
		},
		{
			name:       "a JSON stream cut inside an object",
			input:      cm("a") + "\n" + `{"apiVersion": "v1",`,
			wantRefs:   []string{"stdin:1: object 1 ConfigMap/a"},
			wantErrors: []string{"stdin:2: object 2: stdin ends inside the object"},
		},
		{
			name:     "comment-only documents are not counted",
			input:    "# header\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
			wantRefs: []string{"stdin:4: document 1 ConfigMap/a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, errs := readSource(Stdin, strings.NewReader(tt.input))
			var refs, messages []string
			for _, d := range docs {
				refs = append(refs, d.at.String()+" "+d.gvk.Kind+"/"+d.meta.Name)
			}
			for _, err := range errs {
				messages = append(messages, err.Error())
			}
			assert.Equal(t, tt.wantRefs, refs)
			assert.Equal(t, tt.wantErrors, messages)
		})
	}
}
