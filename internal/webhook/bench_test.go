package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Each benchmark serves one realistic AdmissionReview body, in the same loop,
// through statekeeper's handlers as Register serves them (mutate, validate;
// statekeeper for the pod path)
// and through a stock controller-runtime admission.Webhook whose handler
// allows everything (noop): the no-op pays for decoding the review and
// nothing more, statekeeper for decoding it and doing its work.
//
//	go test -run ^$ -bench . -benchmem ./internal/webhook/

func BenchmarkDeploymentCreate(b *testing.B) {
	benchmarkBody(b, readFixture(b, "deployment-create-stateless-single-rwo"), true)
}

func BenchmarkStatefulSetCreate(b *testing.B) {
	benchmarkBody(b, readFixture(b, "statefulset-create-stateful-multi"), true)
}

func BenchmarkStatefulSetUpdate(b *testing.B) {
	benchmarkBody(b, readFixture(b, "statefulset-update-reapply"), true)
}

func BenchmarkScale(b *testing.B) {
	benchmarkBody(b, readFixture(b, "statefulset-scale-quorum-2"), false)
}

func BenchmarkHPA(b *testing.B) {
	benchmarkBody(b, readFixture(b, "hpa-create-single-target"), false)
}

// BenchmarkStatefulSetCreateLarge is a StatefulSet whose container carries
// 500 environment variables (a ~40 kB object).
func BenchmarkStatefulSetCreateLarge(b *testing.B) {
	benchmarkBody(b, withEnv(b, readFixture(b, "statefulset-create-stateful-multi"), 500), true)
}

// BenchmarkPodCreate is a StatefulSet controller's pod CREATE on
// /mutate-pods: its owner looked up, its identity stamped.
func BenchmarkPodCreate(b *testing.B) {
	engine := testEngine(cluster())
	benchmarkHandlers(b, readFixture(b, "pod-create-stateful-multi"), served{"statekeeper", Webhook(NewPodMutator(engine, logr.Discard(), nil))})
}

// served is one handler a benchmark serves the body through.
type served struct {
	name    string
	handler http.Handler
}

func benchmarkBody(b *testing.B, body []byte, mutating bool) {
	engine := testEngine(cluster())
	handlers := []served{{"validate", Webhook(NewValidator(engine, logr.Discard(), nil))}}
	if mutating {
		handlers = append([]served{{"mutate", Webhook(NewMutator(engine, logr.Discard(), nil))}}, handlers...)
	}
	benchmarkHandlers(b, body, handlers...)
}

// benchmarkHandlers serves body through each handler, then through the no-op.
func benchmarkHandlers(b *testing.B, body []byte, handlers ...served) {
	noop := &admission.Webhook{
		Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			return admission.Allowed("")
		}),
		LogConstructor: discardLogs,
	}
	for _, h := range append(handlers, served{"noop", noop}) {
		b.Run(h.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				h.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

func discardLogs(logr.Logger, *admission.Request) logr.Logger { return discard }

var discard = logr.Discard()

// withEnv returns the review body with n environment variables added to the
// object's first container.
func withEnv(b testing.TB, body []byte, n int) []byte {
	var review map[string]any
	require.NoError(b, json.Unmarshal(body, &review))
	object := review["request"].(map[string]any)["object"].(map[string]any)
	podSpec := object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	container := podSpec["containers"].([]any)[0].(map[string]any)
	env := make([]any, n)
	for i := range env {
		env[i] = map[string]any{"name": fmt.Sprintf("SETTING_%03d", i), "value": fmt.Sprintf("value-%03d-of-a-realistic-length", i)}
	}
	container["env"] = env
	out, err := json.Marshal(review)
	require.NoError(b, err)
	return out
}
