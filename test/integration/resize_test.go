package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
)

// Bigger volumes from the manifest itself (docs/spec.md §10), written the way
// users write them: the real kubectl (client-side apply, server-side apply,
// Helm 4's server-side apply as kubectl's with Helm's field manager,
// replace, diff) against the chart's webhooks.

// resizeManifest is a StatefulSet as a database chart renders it: its own
// claim template "data" of size and class.
func resizeManifest(namespace, size, class string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: %s
  labels:
    app: db
    statekeeper.io/deploy-type: stateful-multi
spec:
  replicas: 2
  serviceName: db-headless
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
        statekeeper.io/deploy-type: stateful-multi
    spec:
      containers:
        - name: db
          image: registry.k8s.io/pause:3.10
          volumeMounts:
            - name: data
              mountPath: /data
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        storageClassName: %s
        resources:
          requests:
            storage: %s
`, namespace, class, size)
}

// kubectlResult is what one kubectl command printed.
type kubectlResult struct {
	stdout, stderr string
	err            error
}

// kubectl runs the envtest kubectl against the suite's API server as its
// administrator, with manifest on stdin.
func (tn *tenant) kubectl(manifest string, args ...string) kubectlResult {
	tn.t.Helper()
	cmd := exec.CommandContext(tn.ctx, filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"),
		append([]string{"--kubeconfig", adminKubeconfig(tn.t)}, args...)...)
	cmd.Stdin = strings.NewReader(manifest)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return kubectlResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// adminKubeconfig writes a kubeconfig of the suite's administrator.
func adminKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := shared.config
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
	return path
}

// expansionClass creates a StorageClass of the tenant's that allows
// expansion or not; the claim templates name it (no default class is
// touched: tests run in parallel).
func (tn *tenant) expansionClass(suffix string, expands bool) string {
	tn.t.Helper()
	class := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: tn.ns + "-" + suffix},
		Provisioner:          "example.com/resizer",
		AllowVolumeExpansion: ptr.To(expands),
	}
	require.NoError(tn.t, tn.c.Create(tn.ctx, class))
	tn.t.Cleanup(func() { _ = tn.c.Delete(context.Background(), class) })
	return class.Name
}

// keptWarning is the warning kubectl prints for a template resized to size.
func keptWarning(stored, size string) string {
	return fmt.Sprintf(`Warning: statefulset "db": claim template "data" keeps %s, because the API server does not let claim templates change; `+
		`its claims grow to %s instead (recorded in statekeeper.io/claim-sizes): the existing ones now, new ones when they are created [storage-resize]`+"\n",
		stored, size)
}

// resizeDenial is a storage-resize denial of StatefulSet name as kubectl prints it.
func resizeDenial(name, field, message string) string {
	return fmt.Sprintf("The StatefulSet %q is invalid: %s: Forbidden: %s [storage-resize]\n", name, field, message)
}

func TestResizeClaimTemplateFromTheManifest(t *testing.T) {
	t.Parallel()
	ways := []struct {
		name string
		// create and write send the manifest for the first time and again.
		create, write []string
	}{
		{"kubectl apply", []string{"apply", "-f", "-"}, []string{"apply", "-f", "-"}},
		{"kubectl apply --server-side", []string{"apply", "--server-side", "-f", "-"}, []string{"apply", "--server-side", "-f", "-"}},
		{"helm 4 server-side apply", []string{"apply", "--server-side", "--field-manager=helm", "--force-conflicts", "-f", "-"},
			[]string{"apply", "--server-side", "--field-manager=helm", "--force-conflicts", "-f", "-"}},
		{"kubectl replace", []string{"create", "-f", "-"}, []string{"replace", "-f", "-"}},
	}
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			class := tn.expansionClass("expands", true)
			res := tn.kubectl(resizeManifest(tn.ns, "1Gi", class), way.create...)
			require.NoError(t, res.err, res.stderr)
			created := tn.storedStatefulSet("db")

			bigger := resizeManifest(tn.ns, "5Gi", class)
			res = tn.kubectl(bigger, way.write...)
			require.NoError(t, res.err, res.stderr)
			assert.Equal(t, keptWarning("1Gi", "5Gi"), res.stderr)
			stored := tn.storedStatefulSet("db")
			assert.Equal(t, created.Spec.VolumeClaimTemplates, stored.Spec.VolumeClaimTemplates, "the template stays")
			assert.Equal(t, "data=5Gi", stored.Annotations[policy.AnnotationClaimSizes])

			// Settled: the same manifest again writes nothing and warns nothing.
			res = tn.kubectl(bigger, way.write...)
			require.NoError(t, res.err, res.stderr)
			assert.Empty(t, res.stderr)
			again := tn.storedStatefulSet("db")
			assert.Equal(t, stored.ResourceVersion, again.ResourceVersion, "the second write changed nothing")

			// Tools that diff see no drift after the resize.
			diff := tn.kubectl(bigger, "diff", "-f", "-")
			assert.NoError(t, diff.err, "kubectl diff after the resize: %s%s", diff.stdout, diff.stderr)
			assert.Empty(t, diff.stdout)

			// An unrelated change later keeps the record.
			res = tn.kubectl(strings.Replace(bigger, "replicas: 2", "replicas: 3", 1), way.write...)
			require.NoError(t, res.err, res.stderr)
			assert.Empty(t, res.stderr)
			later := tn.storedStatefulSet("db")
			assert.Equal(t, "data=5Gi", later.Annotations[policy.AnnotationClaimSizes])
			assert.Equal(t, ptr.To[int32](3), later.Spec.Replicas)
		})
	}
}

func TestResizeClaimTemplateRefusals(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	expands := tn.expansionClass("expands", true)
	fixed := tn.expansionClass("fixed", false)
	sizeField := "spec.volumeClaimTemplates[0].spec.resources.requests[storage]"
	classField := "spec.volumeClaimTemplates[0].spec.storageClassName"

	res := tn.kubectl(resizeManifest(tn.ns, "1Gi", expands), "apply", "-f", "-")
	require.NoError(t, res.err, res.stderr)
	res = tn.kubectl(resizeManifest(tn.ns, "5Gi", expands), "apply", "-f", "-")
	require.NoError(t, res.err, res.stderr)

	t.Run("a shrink below the recorded size", func(t *testing.T) {
		res := tn.kubectl(resizeManifest(tn.ns, "2Gi", expands), "apply", "-f", "-")
		require.Error(t, res.err)
		assert.Equal(t, resizeDenial("db", sizeField, `statefulset "db": claim template "data" cannot shrink from 5Gi to 2Gi, because volume claims only grow: `+
			`keep 5Gi or more, or back the data up and recreate the statefulset and its claims to use smaller volumes`), res.stderr)
	})
	t.Run("a size with another change", func(t *testing.T) {
		res := tn.kubectl(resizeManifest(tn.ns, "8Gi", fixed), "replace", "-f", "-")
		require.Error(t, res.err)
		assert.Equal(t, resizeDenial("db", "spec.volumeClaimTemplates", fmt.Sprintf(`statefulset "db": claim template "data" changes its size (1Gi to 8Gi) together with other fields of the claim templates, `+
			`and the API server lets no claim template change: statekeeper grows the claims of a size change alone. `+
			`Change only the sizes, or make the other change by re-creating the statefulset without its pods and claims: `+
			`kubectl delete statefulset db -n %s --cascade=orphan, then apply the manifest again (the pods and claims are adopted; existing claims keep their size)`, tn.ns)), res.stderr)
	})
	t.Run("a class that cannot expand", func(t *testing.T) {
		tn := tn.in(t)
		res := tn.kubectl(strings.ReplaceAll(resizeManifest(tn.ns, "1Gi", fixed), "name: db", "name: fixed"), "apply", "-f", "-")
		require.NoError(t, res.err, res.stderr)
		res = tn.kubectl(strings.ReplaceAll(resizeManifest(tn.ns, "3Gi", fixed), "name: db", "name: fixed"), "apply", "--server-side", "--force-conflicts", "-f", "-")
		require.Error(t, res.err)
		assert.Equal(t, resizeDenial("fixed", classField, fmt.Sprintf(`statefulset "fixed": claim template "data" cannot grow to 3Gi: its storage class %q does not allow volume expansion `+
			`(allowVolumeExpansion is not true); set allowVolumeExpansion: true on the class if its provisioner can expand volumes, or keep 1Gi`, fixed)), res.stderr)
	})
	t.Run("warn mode: the shrink is warned of and ignored", func(t *testing.T) {
		warn := newTenant(t, policy.ModeWarn)
		class := warn.expansionClass("expands", true)
		res := warn.kubectl(resizeManifest(warn.ns, "4Gi", class), "apply", "-f", "-")
		require.NoError(t, res.err, res.stderr)
		res = warn.kubectl(resizeManifest(warn.ns, "2Gi", class), "apply", "-f", "-")
		require.NoError(t, res.err, res.stderr)
		assert.Equal(t, `Warning: statefulset "db": claim template "data" cannot shrink from 4Gi to 2Gi, because volume claims only grow: `+
			`keep 4Gi or more, or back the data up and recreate the statefulset and its claims to use smaller volumes [storage-resize]`+"\n", res.stderr)
		assert.Equal(t, resource.MustParse("4Gi"), warn.storedStatefulSet("db").Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage])
	})
}

// TestClaimsFollowTheRecordedSize: existing claims of the template are
// raised once bound, and a claim created later (as the StatefulSet
// controller creates it for a new ordinal) is made at the recorded size.
// envtest runs no StatefulSet controller and no volume binder: the test
// creates and binds the claims as they would.
func TestClaimsFollowTheRecordedSize(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	class := tn.expansionClass("expands", true)
	claim := func(name string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tn.ns, Labels: map[string]string{"app": "db"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: ptr.To(class),
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
	}
	bind := func(c *corev1.PersistentVolumeClaim) {
		c.Status.Phase = corev1.ClaimBound
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
		require.NoError(t, tn.c.Status().Update(tn.ctx, c))
	}
	res := tn.kubectl(resizeManifest(tn.ns, "1Gi", class), "apply", "-f", "-")
	require.NoError(t, res.err, res.stderr)
	bound, retained := claim("data-db-0"), claim("data-db-7")
	for _, c := range []*corev1.PersistentVolumeClaim{bound, retained} {
		require.NoError(t, tn.c.Create(tn.ctx, c))
		bind(c)
	}

	res = tn.kubectl(resizeManifest(tn.ns, "5Gi", class), "apply", "-f", "-")
	require.NoError(t, res.err, res.stderr)
	for _, name := range []string{"data-db-0", "data-db-7"} {
		assert.Eventually(t, func() bool {
			var c corev1.PersistentVolumeClaim
			err := tn.c.Get(tn.ctx, client.ObjectKey{Namespace: tn.ns, Name: name}, &c)
			return err == nil && c.Spec.Resources.Requests.Storage().String() == "5Gi"
		}, settleTimeout, settlePoll, "claim %s raised to the recorded size", name)
	}

	// A new ordinal's claim, once statekeeper's cache holds the record.
	var made *corev1.PersistentVolumeClaim
	require.Eventually(t, func() bool {
		c := claim("data-db-2")
		if err := tn.c.Create(tn.ctx, c, client.DryRunAll); err != nil {
			return false
		}
		made = c
		return c.Spec.Resources.Requests.Storage().String() == "5Gi"
	}, settleTimeout, settlePoll, "a dry run of the new claim is sized")
	fresh := claim("data-db-2")
	require.NoError(t, tn.c.Create(tn.ctx, fresh))
	assert.Equal(t, "5Gi", fresh.Spec.Resources.Requests.Storage().String(), "made at the recorded size")
	assert.Equal(t, made.Spec, fresh.Spec)

	// The gauge: both raised claims wait for the storage provider, until
	// their capacity says the volumes grew.
	tn.eventuallyAwaiting(2)
	for _, c := range []*corev1.PersistentVolumeClaim{bound, retained} {
		require.NoError(t, tn.c.Get(tn.ctx, client.ObjectKeyFromObject(c), c))
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}
		require.NoError(t, tn.c.Status().Update(tn.ctx, c))
	}
	tn.eventuallyAwaiting(0)

	other := claim("data-other-0")
	require.NoError(t, tn.c.Create(tn.ctx, other))
	assert.Equal(t, "1Gi", other.Spec.Resources.Requests.Storage().String(), "another statefulset's claim is left alone")
}

// eventuallyAwaiting waits until statekeeper's gauge of claims waiting for
// expansion says n for the tenant's StatefulSet db (statekeeper runs in the
// test's process, so its registry is at hand).
func (tn *tenant) eventuallyAwaiting(n float64) {
	tn.t.Helper()
	var last float64
	ok := assert.Eventually(tn.t, func() bool {
		families, err := ctrlmetrics.Registry.Gather()
		require.NoError(tn.t, err)
		last = -1
		for _, f := range families {
			if f.GetName() != "statekeeper_claims_awaiting_expansion" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["resource_namespace"] == tn.ns && labels["statefulset"] == "db" {
					last = m.GetGauge().GetValue()
				}
			}
		}
		return last == n
	}, settleTimeout, settlePoll)
	require.True(tn.t, ok, "statekeeper_claims_awaiting_expansion of db: want %v, last %v", n, last)
}

// TestClaimTemplatesAreImmutableOn136: --claim-template-resize auto asks
// the API server; Kubernetes 1.36 neither serves KEP-4650's field nor
// admits a larger template, so statekeeper records (and its probe
// StatefulSet is gone afterwards).
func TestClaimTemplatesAreImmutableOn136(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	dc, err := discovery.NewDiscoveryClientForConfig(shared.config)
	require.NoError(t, err)
	native, err := review.ServesMutableClaimTemplates(tn.ctx, openapi.ToClientWithContext(dc.OpenAPIV3()), tn.c, tn.ns)
	require.NoError(t, err)
	assert.False(t, native, "the OpenAPI of 1.36 has no %s", review.ClaimUpdatePolicyField)

	accepted, err := review.AcceptsClaimTemplateResize(tn.ctx, tn.c, tn.ns)
	require.NoError(t, err)
	assert.False(t, accepted, "the dry run of a larger template is refused")
	var probes appsv1.StatefulSetList
	require.NoError(t, tn.c.List(tn.ctx, &probes, client.InNamespace(tn.ns)))
	assert.Empty(t, probes.Items, "the probe statefulset is deleted")
}
