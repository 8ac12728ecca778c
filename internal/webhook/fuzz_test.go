package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// fuzzResources are the (resource, subresource, kind group, kind) a fuzzed
// request claims to be; index i%len picks one.
var fuzzResources = []struct{ group, resource, sub, kindGroup, kind string }{
	{"apps", "deployments", "", "apps", "Deployment"},
	{"apps", "statefulsets", "", "apps", "StatefulSet"},
	{"apps", "deployments", "scale", "autoscaling", "Scale"},
	{"apps", "statefulsets", "scale", "autoscaling", "Scale"},
	{"autoscaling", "horizontalpodautoscalers", "", "autoscaling", "HorizontalPodAutoscaler"},
	{"apps", "statefulsets", "", "autoscaling", "Scale"},
	{"", "pods", "", "", "Pod"},
	{"", "persistentvolumeclaims", "", "", "PersistentVolumeClaim"},
}

// FuzzHandler feeds arbitrary bytes as the object (and old object) of an
// AdmissionReview to every handler as Register serves it: they must never
// panic (a recovered panic answers 500), must always answer a well-formed
// AdmissionReview, and must answer alike over the cluster and over what the
// informer cache holds of it.
func FuzzHandler(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for i, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasSuffix(e.Name(), ".patched.json") {
			continue
		}
		object := objectOf(f, readFixture(f, strings.TrimSuffix(e.Name(), ".json")))
		f.Add(uint8(i), "CREATE", []byte(object))
		f.Add(uint8(i), "UPDATE", []byte(object))
	}
	f.Add(uint8(1), "UPDATE", []byte(`{"kind":"StatefulSet","metadata":{"labels":{"statekeeper.io/deploy-type":"stateful-single"}},"spec":{"replicas":-1,"template":{"spec":{"volumes":[{"name":"a","persistentVolumeClaim":{}}]}}}}`))
	f.Add(uint8(4), "CREATE", []byte(`{"kind":"HorizontalPodAutoscaler","spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"StatefulSet","name":"single-db"},"maxReplicas":99}}`))
	f.Add(uint8(0), "CREATE", []byte(`[`))
	f.Add(uint8(0), "DELETE", []byte(`null`))
	f.Add(uint8(7), "CREATE", []byte(`{"kind":"PersistentVolumeClaim","metadata":{"name":"data-single-db-1","labels":{"app":"single-db"}}}`))
	f.Add(uint8(1), "UPDATE", []byte(`{"kind":"StatefulSet","metadata":{"name":"single-db","labels":{"statekeeper.io/deploy-type":"stateful-single"},"annotations":{"statekeeper.io/claim-sizes":"data=2Gi,x"}},"spec":{"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"3Gi"}}}}]}}`))
	f.Add(uint8(6), "CREATE", []byte(`{"kind":"Pod","metadata":{"name":"zk-x","ownerReferences":[{"apiVersion":"apps/v1","kind":"StatefulSet","name":"zk","controller":true}]}}`))

	engine := testEngine(cluster())
	handlers := []*Handler{NewMutator(engine, discard, nil), NewPodMutator(engine, discard, nil), NewValidator(engine, discard, nil), NewClaimMutator(engine, discard, nil)}
	// The same handlers over what the informer cache holds of the cluster
	// (workloads trimmed to what policy reads, policy/stored.go) must
	// answer every input alike.
	cached := testEngine(cluster().AsCached())
	cachedHandlers := []*Handler{NewMutator(cached, discard, nil), NewPodMutator(cached, discard, nil), NewValidator(cached, discard, nil), NewClaimMutator(cached, discard, nil)}
	f.Fuzz(func(t *testing.T, pick uint8, operation string, object []byte) {
		r := fuzzResources[int(pick)%len(fuzzResources)]
		body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` +
			`"uid":"fuzz","kind":{"group":"` + r.kindGroup + `","version":"v1","kind":"` + r.kind + `"},` +
			`"resource":{"group":"` + r.group + `","version":"v1","resource":"` + r.resource + `"},` +
			`"subResource":"` + r.sub + `","name":"single-db","namespace":"shop","operation":` + quote(operation) + `,` +
			`"object":`)
		body = append(body, object...)
		body = append(body, `,"oldObject":`...)
		body = append(body, object...)
		body = append(body, `}}`...)
		for i, h := range handlers {
			whole, trimmed := answerBody(Webhook(h), body), answerBody(Webhook(cachedHandlers[i]), body)
			if !bytes.Equal(whole, trimmed) {
				t.Fatalf("%s: the cached cluster answers otherwise:\n%s\n%s", h.name, whole, trimmed)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(whole, &out); err != nil {
				t.Fatalf("%s: the answer is not an AdmissionReview: %v\n%s", h.name, err, whole)
			}
			resp := out.Response
			if resp == nil || resp.Result == nil {
				t.Fatalf("%s: no response or status: %s", h.name, whole)
			}
			if resp.Result.Code == http.StatusInternalServerError {
				// Memory lookups cannot fail: a 500 here is a recovered panic.
				t.Fatalf("%s: internal error: %s", h.name, resp.Result.Message)
			}
			if !resp.Allowed && resp.Result.Message == "" {
				t.Fatalf("%s: refused without a message: %s", h.name, whole)
			}
		}
	})
}

// answerBody is the body h answers to an AdmissionReview.
func answerBody(h http.Handler, body []byte) []byte {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return rec.Body.Bytes()
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
