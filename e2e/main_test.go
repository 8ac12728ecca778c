//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// chartDir is relative to this package: go test runs in the package
	// directory.
	chartDir = "../charts/statekeeper"

	// releaseName and releaseNamespace are the Helm release under test.
	releaseName      = "statekeeper"
	releaseNamespace = "statekeeper"

	// probeNamespace holds the server-side dry runs that tell when the API
	// server reaches statekeeper; nothing is ever stored in it.
	probeNamespace = "e2e-probe"
	// testNamespacePrefix starts every test namespace, so that a run can
	// delete what an interrupted run left behind.
	testNamespacePrefix = "e2e-"
)

// settings is what the suite is told through the environment (see the
// Makefile's e2e and e2e-kind targets).
type settings struct {
	kubeconfig string
	helm       string
	kubectl    string
	// statekeeper is the binary the suite runs as a local process when no
	// container runs in the cluster (image empty).
	statekeeper string
	// image, when set, is installed through the chart's Deployment instead.
	image string
	// certManagerCRDs is a directory of cert-manager's CRDs and certManager
	// the program that runs its issuance and CA injection (hack/certmanager),
	// both for the local cluster; on kind cert-manager itself is installed
	// beforehand.
	certManagerCRDs string
	certManager     string
	// workDir keeps the local server's certificates, kubeconfig and log.
	workDir string
}

func settingsFromEnv() (settings, error) {
	s := settings{
		kubeconfig:      os.Getenv("KUBECONFIG"),
		helm:            os.Getenv("HELM"),
		kubectl:         os.Getenv("KUBECTL"),
		statekeeper:     os.Getenv("STATEKEEPER"),
		image:           os.Getenv("E2E_IMAGE"),
		certManagerCRDs: os.Getenv("CERT_MANAGER_CRDS"),
		certManager:     os.Getenv("CERT_MANAGER"),
		workDir:         os.Getenv("E2E_WORKDIR"),
	}
	var errs []error
	if s.kubeconfig == "" {
		errs = append(errs, errors.New("KUBECONFIG must name the cluster to test"))
	}
	if s.helm == "" {
		errs = append(errs, errors.New("HELM must name the helm binary"))
	}
	if s.kubectl == "" {
		s.kubectl = "kubectl"
	}
	if _, err := exec.LookPath(s.kubectl); err != nil {
		errs = append(errs, fmt.Errorf("kubectl: %w (set KUBECTL)", err))
	}
	if s.image == "" && s.statekeeper == "" {
		errs = append(errs, errors.New("STATEKEEPER must name the statekeeper binary when E2E_IMAGE is unset (local cluster)"))
	}
	if s.image == "" && (s.certManager == "" || s.certManagerCRDs == "") {
		errs = append(errs, errors.New("CERT_MANAGER and CERT_MANAGER_CRDS must name hack/certmanager's binary and cert-manager's CRDs when E2E_IMAGE is unset (local cluster)"))
	}
	if s.workDir == "" {
		dir, err := os.MkdirTemp("", "statekeeper-e2e-")
		if err != nil {
			errs = append(errs, err)
		}
		s.workDir = dir
	}
	if abs, err := filepath.Abs(s.workDir); err == nil {
		s.workDir = abs
	}
	if err := os.MkdirAll(s.workDir, 0o755); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// local reports whether statekeeper runs as a local process (no containers
// in the cluster) rather than as the chart's Deployment.
func (s settings) local() bool { return s.image == "" }

// suite is shared by every test: clients of the cluster and the installed
// release. Tests only read it; each works in its own namespace.
var suite struct {
	settings settings
	config   *rest.Config
	client   client.Client
	release  *release
	// certManager runs cert-manager on the local cluster; nil on kind.
	certManager *certManager
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	started := time.Now()
	if err := initSuite(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n(run the suite through `make e2e` or `make e2e-kind`, which set these up)\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := prepareCluster(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: preparing the cluster: %v\n", err)
		return 1
	}
	if suite.certManager != nil {
		// Stopped last: the release's uninstall still deletes its Certificates.
		defer func() {
			if err := suite.certManager.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: stopping cert-manager: %v\n", err)
			}
		}()
	}
	if err := suite.release.install(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: installing statekeeper: %v\n", err)
		suite.release.dumpLog(os.Stderr)
		suite.release.teardown(context.Background())
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: statekeeper installed and answering in %s\n", time.Since(started).Round(time.Millisecond))

	code := m.Run()

	if code != 0 {
		suite.release.dumpLog(os.Stderr)
	}
	teardownCtx, cancelTeardown := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelTeardown()
	if err := suite.release.teardown(teardownCtx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: removing statekeeper: %v\n", err)
		code = 1
	}
	fmt.Fprintf(os.Stderr, "e2e: finished in %s\n", time.Since(started).Round(time.Millisecond))
	return code
}

func initSuite() error {
	s, err := settingsFromEnv()
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", s.kubeconfig, err)
	}
	// Parallel tests poll; client-side throttling would make them wait on
	// the client instead of on the cluster.
	cfg.QPS, cfg.Burst = 100, 200
	suite.settings = s
	suite.config = cfg
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	if suite.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	suite.release, err = newRelease(s)
	if err == nil && s.local() {
		suite.certManager = newCertManager(s)
	}
	return err
}

// prepareCluster makes the cluster ready for an install: what an interrupted
// run left is removed, cert-manager's CRDs are present and, on the local
// cluster, cert-manager runs, and the probe namespace exists.
func prepareCluster(ctx context.Context) error {
	if err := suite.release.removeLeftovers(ctx); err != nil {
		return err
	}
	if err := deleteTestNamespaces(ctx); err != nil {
		return err
	}
	if err := ensureCertManagerCRDs(ctx); err != nil {
		return err
	}
	if suite.certManager != nil {
		if err := suite.certManager.start(); err != nil {
			return err
		}
	}
	err := suite.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNamespace}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", probeNamespace, err)
	}
	return nil
}

// deleteTestNamespaces deletes the namespaces of an earlier, interrupted run
// without waiting: their names never collide with this run's.
func deleteTestNamespaces(ctx context.Context) error {
	var list corev1.NamespaceList
	if err := suite.client.List(ctx, &list, client.MatchingLabels{testNamespaceLabel: "true"}); err != nil {
		return fmt.Errorf("listing earlier test namespaces: %w", err)
	}
	for _, ns := range list.Items {
		if ns.DeletionTimestamp != nil {
			continue
		}
		if err := suite.client.Delete(ctx, &ns); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting earlier test namespace %s: %w", ns.Name, err)
		}
	}
	return nil
}

// certManagerCRDNames are the kinds the chart creates; the others of
// cert-manager's CRDs come along in the same directory.
var certManagerCRDNames = []string{"issuers.cert-manager.io", "certificates.cert-manager.io"}

// ensureCertManagerCRDs applies cert-manager's CRDs when a directory of them
// is given (the local cluster) and waits until the chart's kinds are served;
// on kind cert-manager is installed before the suite starts.
func ensureCertManagerCRDs(ctx context.Context) error {
	if dir := suite.settings.certManagerCRDs; dir != "" {
		// Server-side: the CRDs exceed the size limit of the annotation a
		// client-side apply keeps.
		res := runKubectl(ctx, "", "apply", "--server-side", "--force-conflicts", "--field-manager=statekeeper-e2e", "-f", dir)
		if res.err != nil {
			return fmt.Errorf("applying cert-manager's CRDs from %s: %s", dir, res)
		}
	}
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range certManagerCRDNames {
			var crd apiextensionsv1.CustomResourceDefinition
			if lastErr = suite.client.Get(ctx, client.ObjectKey{Name: name}, &crd); lastErr != nil {
				return false, nil
			}
			if !crdEstablished(&crd) {
				lastErr = fmt.Errorf("CRD %s is not established yet", name)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("cert-manager's CRDs %v are not served (set CERT_MANAGER_CRDS to a directory of them, or install cert-manager): %w (last: %v)",
			certManagerCRDNames, err, lastErr)
	}
	return nil
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
