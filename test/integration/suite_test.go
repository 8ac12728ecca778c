package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"go.uber.org/zap/zapcore"

	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/workloads"
)

const (
	// chartDir is the chart whose webhook configurations the suite installs,
	// relative to this package (go test runs in the package directory).
	chartDir = "../../charts/statekeeper"
	// releaseNamespace is statekeeper's own namespace, which the chart excludes.
	releaseNamespace = "statekeeper"
	// webhookReadyTimeout bounds the wait for the in-process server to answer.
	webhookReadyTimeout = 60 * time.Second
)

// shared is what every test reuses: one API server and one statekeeper for the
// whole package, so each test only pays for its own namespace.
var shared struct {
	config     *rest.Config
	scheme     *runtime.Scheme
	httpClient *http.Client
	mapper     meta.RESTMapper
	// statekeeper is the client config of statekeeper's own user, whose
	// requests the API server's audit log records.
	statekeeper *rest.Config
	audit       *auditLog
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

// runSuite starts the API server and statekeeper, runs the tests and tears
// both down; it returns the exit code.
func runSuite(m *testing.M) int {
	started := time.Now()
	helm := os.Getenv("HELM")
	if os.Getenv("KUBEBUILDER_ASSETS") == "" || helm == "" {
		fmt.Fprintln(os.Stderr, "test/integration needs KUBEBUILDER_ASSETS (kube-apiserver, etcd, kubectl) "+
			"and HELM (the helm binary) to be set; run it with `make test`, which builds both and exports them")
		return 1
	}
	// Only errors: the admission log lines of hundreds of requests drown the test output.
	logs := &silenceableWriter{w: os.Stderr}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.Level(zapcore.ErrorLevel)))

	mutating, validating, err := renderWebhooks(helm)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rendering the chart's webhook configurations: %v\n", err)
		return 1
	}
	env := &envtest.Environment{
		// The chart's PolicyReport CRD: the server's background audit writes its reports.
		CRDDirectoryPaths:     []string{"../../charts/statekeeper/files"},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			MutatingWebhooks:   mutating,
			ValidatingWebhooks: validating,
		},
	}
	// Debian's etcd 3.4 cannot serve the streaming lists that the WatchList
	// feature turns watches from resourceVersion "" into; the local cluster
	// (hack/cluster.sh) turns it off for the same reason.
	env.ControlPlane.GetAPIServer().Configure().Append("feature-gates", "WatchList=false")
	audit, err := configureAuditLog(env.ControlPlane.GetAPIServer())
	if err != nil {
		fmt.Fprintf(os.Stderr, "configuring the API server's audit log: %v\n", err)
		return 1
	}
	defer audit.remove()
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	// Tests run in parallel, each with its own client; the default 5 QPS
	// would make them wait on the client, not on the server.
	cfg.QPS, cfg.Burst = 500, 1000

	// statekeeper runs as a user of its own, so that the audit log tells its
	// requests from the tests' own.
	user, err := env.AddUser(envtest.User{Name: statekeeperUser, Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "adding statekeeper's user: %v\n", err)
		return 1
	}
	statekeeperConfig := user.Config()
	statekeeperConfig.QPS, statekeeperConfig.Burst = cfg.QPS, cfg.Burst

	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := startStatekeeper(ctx, statekeeperConfig, env.WebhookInstallOptions)
	if err != nil {
		cancel()
		fmt.Fprintf(os.Stderr, "starting statekeeper: %v\n", err)
		return 1
	}
	defer func() {
		// envtest deletes the serving certificates while the webhook
		// server's certificate watcher may still be winding down; its
		// complaints about missing files say nothing about statekeeper.
		logs.silence()
		cancel()
		if err := <-stopped; err != nil {
			fmt.Fprintf(os.Stderr, "statekeeper stopped with an error: %v\n", err)
		}
	}()

	shared.statekeeper, shared.audit = statekeeperConfig, audit
	if err := initShared(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "building the test clients: %v\n", err)
		return 1
	}
	if err := waitForWebhook(ctx, "integration-readiness"); err != nil {
		fmt.Fprintf(os.Stderr, "statekeeper never answered the API server: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "integration suite ready in %s\n", time.Since(started).Round(time.Millisecond))
	code := m.Run()
	fmt.Fprintf(os.Stderr, "integration suite finished in %s\n", time.Since(started).Round(time.Millisecond))
	return code
}

// renderWebhooks renders the chart's two webhook configurations as `helm
// template` does for an install. webhook.url is left unset on purpose: the
// chart's default clientConfig is its Service, which envtest rewrites to
// point at the local server and fills with its CA bundle.
func renderWebhooks(helm string) ([]*admissionregistrationv1.MutatingWebhookConfiguration, []*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	objects, err := helmTemplate(helm, "template", "sk", chartDir, "--namespace", releaseNamespace,
		// The webhook alone: TestPoliciesDecideAsTheWebhook installs the
		// policy where it compares the two.
		"--set", "admissionPolicies.enabled=false",
		"--show-only", "templates/mutatingwebhookconfiguration.yaml",
		"--show-only", "templates/validatingwebhookconfiguration.yaml")
	if err != nil {
		return nil, nil, err
	}
	var mutating []*admissionregistrationv1.MutatingWebhookConfiguration
	var validating []*admissionregistrationv1.ValidatingWebhookConfiguration
	for _, obj := range objects {
		switch o := obj.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			mutating = append(mutating, o)
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			validating = append(validating, o)
		default:
			return nil, nil, fmt.Errorf("unexpected %s in the rendered webhook templates", obj.GetObjectKind().GroupVersionKind())
		}
	}
	if len(mutating) != 1 || len(validating) != 1 {
		return nil, nil, fmt.Errorf("want one mutating and one validating configuration, got %d and %d", len(mutating), len(validating))
	}
	return mutating, validating, nil
}

// helmTemplate runs helm with args (a `helm template`) and decodes what it
// prints.
func helmTemplate(helm string, args ...string) ([]runtime.Object, error) {
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", cmd, err, stderr.String())
	}
	decoder := serializer.NewCodecFactory(clientgoscheme.Scheme).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var objects []runtime.Object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: decoding a rendered document: %w:\n%s", cmd, err, doc)
		}
		objects = append(objects, obj)
	}
}

// startStatekeeper runs the real server in-process on the address and
// certificates envtest registered; the returned channel yields the manager's
// result once ctx is cancelled.
func startStatekeeper(ctx context.Context, cfg *rest.Config, hooks envtest.WebhookInstallOptions) (<-chan error, error) {
	c := config.Default()
	c.WebhookHost = hooks.LocalServingHost
	c.WebhookPort = hooks.LocalServingPort
	c.CertDir = hooks.LocalServingCertDir
	c.MetricsBindAddress = "0"
	c.HealthProbeBindAddress = "0"
	// Leader-elected as the chart runs it: TestLosingTheLease takes the
	// Lease away. The Lease lives in statekeeper's own namespace.
	c.LeaderElect = true
	c.Namespace = releaseNamespace
	if err := createNamespace(ctx, cfg, releaseNamespace); err != nil {
		return nil, err
	}
	c.LogFormat = config.LogFormatConsole
	c.LogLevel = "error"
	mgr, err := server.New(c, cfg)
	if err != nil {
		return nil, err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	return stopped, nil
}

func createNamespace(ctx context.Context, cfg *rest.Config, name string) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	return c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

func initShared(cfg *rest.Config) error {
	shared.config = cfg
	shared.scheme = clientgoscheme.Scheme
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	shared.httpClient = httpClient
	shared.mapper, err = apiutil.NewDynamicRESTMapper(cfg, httpClient)
	return err
}

// waitForWebhook polls a server-side dry run of a managed StatefulSet, in a
// namespace it creates, until it comes back mutated: the API server then
// reaches statekeeper, and statekeeper has started deciding.
func waitForWebhook(ctx context.Context, namespace string) error {
	c, err := client.New(shared.config, client.Options{Scheme: shared.scheme, HTTPClient: shared.httpClient, Mapper: shared.mapper})
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Create(ctx, ns); err != nil {
		return err
	}
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, webhookReadyTimeout, true, func(ctx context.Context) (bool, error) {
		sts := workloads.StatefulSet("probe", policy.StatefulSingle, 1)
		sts.Namespace = ns.Name
		lastErr = c.Create(ctx, sts, client.DryRunAll)
		return lastErr == nil && sts.Spec.ServiceName != "", nil
	})
	if err != nil {
		return fmt.Errorf("%w (last create: %v)", err, lastErr)
	}
	return nil
}

// silenceableWriter passes log output through until silence is called.
type silenceableWriter struct {
	mu     sync.Mutex
	w      io.Writer
	silent bool
}

func (s *silenceableWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silent {
		return len(p), nil
	}
	return s.w.Write(p)
}

func (s *silenceableWriter) silence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = true
}
