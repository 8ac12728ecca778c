//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/podproc"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// suite is what every scenario works with.
type suite struct {
	s      settings
	c      client.Client
	fleet  *fleet
	load   *load
	ns     string // the load's namespace
	certs  string // the development CA's directory
	report *report
}

// row is one line of the fault table.
type row struct {
	scenario string
	counts   counts
	recovery time.Duration
	note     string
}

type report struct {
	mu   sync.Mutex
	rows []row
}

func (r *report) add(x row) {
	r.mu.Lock()
	r.rows = append(r.rows, x)
	r.mu.Unlock()
}

func (r *report) print(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(w, "\nfault table (requests: writes of the steady load that started during the scenario; failed: refusals that are not a rule's denial)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\trequests\tadmitted\tdenied\tfailed\twrong\tAPI unavailable\trecovery s\tnote")
	for _, x := range r.rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\n", x.scenario, x.counts.sent, x.counts.admitted, x.counts.denied,
			x.counts.failed, x.counts.wrong, x.counts.unavailable, x.recovery.Seconds(), x.note)
	}
	tw.Flush()
	for _, x := range r.rows {
		for _, by := range []struct {
			what   string
			counts map[string]int
		}{{"failed by cause", x.counts.failedBy}, {"API unavailable by write and cause", x.counts.unavailableBy}} {
			if len(by.counts) == 0 {
				continue
			}
			var causes []string
			for _, cause := range slices.Sorted(maps.Keys(by.counts)) {
				causes = append(causes, fmt.Sprintf("%d × %s", by.counts[cause], cause))
			}
			fmt.Fprintf(w, "  %s: %s: %s\n", x.scenario, by.what, strings.Join(causes, "; "))
		}
	}
	for _, x := range r.rows {
		for _, e := range append(x.counts.firstFailures, x.counts.firstUnavailable...) {
			fmt.Fprintf(w, "  %s: %s\n", x.scenario, e)
		}
	}
}

func TestFaults(t *testing.T) {
	st := setUp(t)
	scenarios := []struct {
		name string
		run  func(t *testing.T, st *suite)
	}{
		{"rolling restart", rollingRestart},
		{"helm upgrade", helmUpgrade},
		{"certificate re-issued", certificateReissued},
		{"replica SIGKILLed", replicaKilled},
		{"replica SIGSTOPped", replicaStalled},
		{"leader SIGKILLed", leaderKilled},
		{"kube-apiserver restarted", func(t *testing.T, st *suite) { controlPlaneRestarted(t, st, "kube-apiserver") }},
		{"etcd restarted", func(t *testing.T, st *suite) { controlPlaneRestarted(t, st, "etcd") }},
		{"burst of creates", burst},
	}
	for _, sc := range scenarios {
		if !t.Run(sc.name, func(t *testing.T) { sc.run(t, st) }) {
			break // the next scenarios would start from a broken state
		}
	}
}

// setUp installs the chart in its secret TLS mode, starts the replicas,
// waits until the API server reaches them through the Service, and starts
// the load; cleanups undo it all.
func setUp(t *testing.T) *suite {
	s := suiteSettings
	ctx := t.Context()
	require.NoError(t, pruneTestHosts(ctx))
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	require.NoError(t, err)
	cfg.QPS, cfg.Burst = -1, 0 // the load sets its own pace
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	require.NoError(t, err)
	st := &suite{s: s, c: c, certs: filepath.Join(s.workDir, "certs"), report: &report{}}
	t.Cleanup(func() { st.report.print(os.Stdout) })

	// What an interrupted run left.
	_, _ = helm(ctx, s, "uninstall", releaseName, "--namespace", releaseNamespace, "--wait", "--timeout", "2m")
	var old corev1.NamespaceList
	require.NoError(t, c.List(ctx, &old, client.MatchingLabels{testNamespaceLabel: "true"}))
	for _, ns := range old.Items {
		_ = c.Delete(ctx, &ns)
	}

	// The chart's Service name, which the serving certificate must name.
	manifest, err := helm(ctx, s, "template", releaseName, chartDir, "--namespace", releaseNamespace,
		"--show-only", "templates/service.yaml", "--set", "tls.mode=secret", "--set", "webhook.caBundle=eA==")
	require.NoError(t, err)
	service := fieldAfter(manifest, "  name: ")
	require.NotEmpty(t, service, "the chart's Service has no name:\n%s", manifest)

	secretName := releaseName + "-faults-tls"
	caBundle := issueCertificate(t, st, service)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	require.NoError(t, applySecret(ctx, st, secretName))

	_, err = helm(ctx, s, "install", releaseName, chartDir, "--namespace", releaseNamespace,
		"--set", "tls.mode=secret", "--set", "tls.secretName="+secretName,
		"--set", "webhook.caBundle="+base64.StdEncoding.EncodeToString(caBundle),
		"--set-json", `nodeSelector={"faults.statekeeper.io/no-such-node":"true"}`)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if st.fleet != nil {
			st.fleet.stopAll()
			_ = st.fleet.deleteSlice(ctx)
		}
		if _, err := helm(ctx, s, "uninstall", releaseName, "--namespace", releaseNamespace, "--wait", "--timeout", "2m"); err != nil {
			t.Errorf("uninstalling: %v", err)
		}
		_ = c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: releaseNamespace}})
	})

	var svc corev1.Service
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: service}, &svc))
	require.Len(t, svc.Spec.Ports, 1)
	var deploys appsv1.DeploymentList
	require.NoError(t, c.List(ctx, &deploys, client.InNamespace(releaseNamespace), client.MatchingLabels{"app.kubernetes.io/instance": releaseName}))
	require.Len(t, deploys.Items, 1)
	deploy := &deploys.Items[0]
	container, err := podproc.Container(deploy, chartContainer)
	require.NoError(t, err)
	targetPort, err := containerPort(container, svc.Spec.Ports[0].TargetPort.String())
	require.NoError(t, err)

	st.fleet = newFleet(s, c, deploy.Name, service, secretName, svc.Spec.Ports[0].Name, targetPort)
	require.NoError(t, st.fleet.rollout(ctx), "starting the replicas")

	// The load's namespace and fixtures; the first write also proves the
	// API server reaches statekeeper through the Service.
	loadNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "faults-", Labels: map[string]string{testNamespaceLabel: "true"}}}
	require.NoError(t, c.Create(ctx, loadNS))
	st.ns = loadNS.Name
	t.Cleanup(func() { _ = c.Delete(context.Background(), loadNS) })
	require.NoError(t, waitUntilMutating(ctx, c, st.ns))
	for _, obj := range fixtures() {
		obj.SetNamespace(st.ns)
		require.NoError(t, c.Create(ctx, obj))
	}

	st.load = startLoad(c, st.ns, s.rate, ops)
	t.Cleanup(st.load.finish)
	return st
}

// fieldAfter returns the rest of the first line of text starting with prefix.
func fieldAfter(text, prefix string) string {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// issueCertificate (re-)issues the serving certificate for the Service's
// DNS names with the development CA, which it keeps, and returns the CA.
func issueCertificate(t *testing.T, st *suite, service string) []byte {
	t.Helper()
	svcHost := service + "." + releaseNamespace + ".svc"
	out, err := exec.CommandContext(t.Context(), devCAScript, st.certs, svcHost, svcHost+".cluster.local").CombinedOutput()
	require.NoError(t, err, "%s: %s", devCAScript, out)
	ca, err := os.ReadFile(filepath.Join(st.certs, "ca.crt"))
	require.NoError(t, err)
	return ca
}

// applySecret writes the serving certificate into the Secret the chart's
// pods mount.
func applySecret(ctx context.Context, st *suite, name string) error {
	crt, err := os.ReadFile(filepath.Join(st.certs, "tls.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(st.certs, "tls.key"))
	if err != nil {
		return err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: releaseNamespace}}
	var current corev1.Secret
	err = st.c.Get(ctx, client.ObjectKeyFromObject(secret), &current)
	secret.Type = corev1.SecretTypeTLS
	secret.Data = map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
	if apierrors.IsNotFound(err) {
		return st.c.Create(ctx, secret)
	}
	if err != nil {
		return err
	}
	current.Data = secret.Data
	return st.c.Update(ctx, &current)
}

func helm(ctx context.Context, s settings, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.helm, append(args, "--kubeconfig", s.kubeconfig)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// waitUntilMutating polls a server-side dry run of a managed StatefulSet
// until it comes back mutated.
func waitUntilMutating(ctx context.Context, c client.Client, ns string) error {
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		lastErr = mutatedDryRun(ctx, c, ns)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the API server does not reach statekeeper through its Service: %w (last: %v)", err, lastErr)
	}
	return nil
}

// mutatedDryRun is one server-side dry run (safe: the webhooks have no side
// effects) of a managed StatefulSet, which must come back mutated.
func mutatedDryRun(ctx context.Context, c client.Client, ns string) error {
	sts := workloads.StatefulSet("probe", policy.StatefulMulti, 0)
	sts.Namespace = ns
	if err := c.Create(ctx, sts, client.DryRunAll); err != nil {
		return err
	}
	if sts.Spec.ServiceName == "" {
		return errNotMutated
	}
	return nil
}

// window runs action with the load running, waits until the writes it
// started have ended, and returns their counts and action's recovery.
func (st *suite) window(t *testing.T, action func() time.Duration) (counts, time.Duration, time.Time) {
	t.Helper()
	from := time.Now()
	recovery := action()
	// A little steady state after the recovery, so that failures right
	// after it are seen too.
	time.Sleep(2 * time.Second)
	to := time.Now()
	st.load.settle(to)
	return count(st.load.between(from, to)), recovery, from
}

// requireNoFailures asserts that statekeeper refused nothing but its rules'
// denials, decided nothing wrong, and that the load went on.
func requireNoFailures(t *testing.T, c counts) {
	t.Helper()
	require.Positive(t, c.sent, "the load sent nothing")
	require.Positive(t, c.admitted, "nothing was admitted")
	require.Positive(t, c.denied, "nothing was denied")
	require.Zero(t, c.failed, "failed admissions: %v", c.firstFailures)
	require.Zero(t, c.wrong, "wrong decisions: %v", c.firstFailures)
	// Writes the API server itself did not take (unavailable) are reported,
	// not asserted: they say how loaded the machine is, not how statekeeper
	// behaves — a webhook that does not answer fails the call within the
	// chart's timeoutSeconds, as a failed admission.
}
