package webhook

import (
	"net/http"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// TestDurationMetric: Register times every request of every path, in the
// buckets that reach the API server's longest timeout.
func TestDurationMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	require.NoError(t, err)
	server := webhook.NewServer(webhook.Options{})
	Register(server, testEngine(cluster()), logr.Discard(), metrics)
	mux := server.WebhookMux()
	body := readFixture(t, "statefulset-create-stateful-single-3")
	for path, n := range map[string]int{PathMutate: 1, PathValidate: 2} {
		for range n {
			serveHTTP(t, httpPath(mux, path), body)
		}
	}

	families, err := reg.Gather()
	require.NoError(t, err)
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != DurationMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			var bounds []float64
			for _, b := range m.GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
			assert.Equal(t, DurationBuckets, bounds)
			counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	// Every path's series exists from the start, at 0 until it is called.
	assert.Equal(t, map[string]uint64{PathMutate: 1, PathMutatePods: 0, PathMutateClaims: 0, PathValidate: 2, PathValidateUnlabelled: 0}, counts)
	assert.Equal(t, 30.0, DurationBuckets[len(DurationBuckets)-1], "the API server's longest webhook timeout")
}

// httpPath sends every request to path on mux.
func httpPath(mux *http.ServeMux, path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = path
		mux.ServeHTTP(w, r)
	})
}
