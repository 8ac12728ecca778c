package integration

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// originalManifest is what a user keeps in Git: no serviceName and no claim
// templates, both of which statekeeper injects at creation and the API server
// then treats as immutable.
const originalManifest = `
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  labels:
    app: db
    statekeeper.io/deploy-type: stateful-single
spec:
  replicas: 1
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
        - name: main
          image: registry.k8s.io/pause:3.10
          volumeMounts:
            - name: data
              mountPath: /data
`

func TestReapplyingTheOriginalManifestKeepsTheInjectedFields(t *testing.T) {
	t.Parallel()
	wantTemplates := []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")}

	t.Run("server-side apply", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		// kubectl apply --server-side --force-conflicts
		apply := func(image string) error {
			u := &unstructured.Unstructured{}
			require.NoError(t, yaml.Unmarshal([]byte(originalManifest), &u.Object))
			u.SetNamespace(tn.ns)
			if image != "" {
				containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
				containers[0].(map[string]any)["image"] = image
				require.NoError(t, unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"))
			}
			return tn.c.Apply(tn.ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("kubectl"), client.ForceOwnership)
		}

		require.NoError(t, apply(""), "first apply creates the StatefulSet")
		created := tn.storedStatefulSet("db")
		assert.Equal(t, "db-headless", created.Spec.ServiceName)
		assert.Equal(t, wantTemplates, created.Spec.VolumeClaimTemplates)

		require.NoError(t, apply(""), "re-applying the same manifest")
		require.NoError(t, apply(updatedImage), "applying the manifest with a new image")
		stored := tn.storedStatefulSet("db")
		assert.Equal(t, updatedImage, stored.Spec.Template.Spec.Containers[0].Image)
		assert.Equal(t, "db-headless", stored.Spec.ServiceName)
		assert.Equal(t, wantTemplates, stored.Spec.VolumeClaimTemplates)
	})

	t.Run("replace", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		manifest := func() *appsv1.StatefulSet {
			s := &appsv1.StatefulSet{}
			require.NoError(t, yaml.Unmarshal([]byte(originalManifest), s))
			s.Namespace = tn.ns
			return s
		}
		require.NoError(t, tn.create(manifest(), false))

		// kubectl replace -f: a PUT of the manifest with the stored resourceVersion.
		for _, image := range []string{"", updatedImage} {
			replaced := manifest()
			replaced.ResourceVersion = tn.storedStatefulSet("db").ResourceVersion
			if image != "" {
				replaced.Spec.Template.Spec.Containers[0].Image = image
			}
			require.NoError(t, tn.update(replaced, false))
		}
		stored := tn.storedStatefulSet("db")
		assert.Equal(t, updatedImage, stored.Spec.Template.Spec.Containers[0].Image)
		assert.Equal(t, "db-headless", stored.Spec.ServiceName)
		assert.Equal(t, wantTemplates, stored.Spec.VolumeClaimTemplates)
	})
}

func (tn *tenant) storedStatefulSet(name string) *appsv1.StatefulSet {
	tn.t.Helper()
	sts := &appsv1.StatefulSet{}
	sts.Namespace, sts.Name = tn.ns, name
	tn.get(sts)
	return sts
}
