package webhook

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStampPods(t *testing.T) {
	const (
		redis = ".redis-headless.shop.svc.cluster.local"
		zk    = ".zk-peers.shop.svc.cluster.local"
	)
	tests := []struct {
		fixture string
		// patch is the exact JSON patch; empty means none.
		patch string
	}{
		// A pod without annotations gets them as one map.
		{fixture: "pod-create-stateful-multi", patch: `[{"op":"add","path":"/metadata/annotations","value":{
			"statekeeper.io/ordinal":"1",
			"statekeeper.io/hostname":"redis-1",
			"statekeeper.io/service":"redis-headless",
			"statekeeper.io/fqdn":"redis-1` + redis + `",
			"statekeeper.io/primary-fqdn":"redis-0` + redis + `",
			"statekeeper.io/peers":"redis-0` + redis + `,redis-1` + redis + `","statekeeper.io/peers-replicas":"2"}}]`},
		// zk numbers its pods from 1 and names its Service; the pod has an
		// annotation already, an init container without env, and the user
		// set STATEKEEPER_SERVICE, which is kept.
		{fixture: "pod-create-inject-env", patch: `[
			{"op":"add","path":"/metadata/annotations/statekeeper.io~1ordinal","value":"2"},
			{"op":"add","path":"/metadata/annotations/statekeeper.io~1hostname","value":"zk-2"},
			{"op":"add","path":"/metadata/annotations/statekeeper.io~1service","value":"zk-peers"},
			{"op":"add","path":"/metadata/annotations/statekeeper.io~1fqdn","value":"zk-2` + zk + `"},
			{"op":"add","path":"/metadata/annotations/statekeeper.io~1primary-fqdn","value":"zk-1` + zk + `"},
			{"op":"add","path":"/metadata/annotations/statekeeper.io~1peers","value":"zk-1` + zk + `,zk-2` + zk + `,zk-3` + zk + `"},
			{"op":"add","path":"/metadata/annotations/statekeeper.io~1peers-replicas","value":"3"},
			{"op":"add","path":"/spec/initContainers/0/env","value":[
				{"name":"STATEKEEPER_ORDINAL","value":"2"},
				{"name":"STATEKEEPER_FQDN","value":"zk-2` + zk + `"},
				{"name":"STATEKEEPER_PRIMARY_FQDN","value":"zk-1` + zk + `"},
				{"name":"STATEKEEPER_SERVICE","value":"zk-peers"},
				{"name":"STATEKEEPER_PEERS","value":"zk-1` + zk + `,zk-2` + zk + `,zk-3` + zk + `"}]},
			{"op":"add","path":"/spec/containers/0/env/-","value":{"name":"STATEKEEPER_ORDINAL","value":"2"}},
			{"op":"add","path":"/spec/containers/0/env/-","value":{"name":"STATEKEEPER_FQDN","value":"zk-2` + zk + `"}},
			{"op":"add","path":"/spec/containers/0/env/-","value":{"name":"STATEKEEPER_PRIMARY_FQDN","value":"zk-1` + zk + `"}},
			{"op":"add","path":"/spec/containers/0/env/-","value":{"name":"STATEKEEPER_PEERS","value":"zk-1` + zk + `,zk-2` + zk + `,zk-3` + zk + `"}}]`},
		// memcached's Service is its chart's ClusterIP Service: only the
		// identity that is true, no DNS names that would not resolve.
		{fixture: "pod-create-clusterip-service", patch: `[{"op":"add","path":"/metadata/annotations","value":{
			"statekeeper.io/ordinal":"0",
			"statekeeper.io/hostname":"memcached-0",
			"statekeeper.io/service":"memcached"}}]`},
		// Fail open: whatever statekeeper cannot stamp is admitted as it is.
		{fixture: "pod-create-unmanaged-owner"},
		{fixture: "pod-create-no-owner"},
		{fixture: "pod-create-owner-not-found"},
	}
	mutator := NewPodMutator(testEngine(cluster()), logr.Discard(), nil)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			assertMutation(t, mutator, tt.fixture, tt.patch, nil)
		})
	}
}

func TestPodMutatorRefusals(t *testing.T) {
	engine := testEngine(cluster())
	tests := []struct {
		name    string
		handler *Handler
		fixture string
		want    string
	}{
		{
			name: "a malformed pod", handler: NewPodMutator(engine, logr.Discard(), nil), fixture: "pod-create-malformed",
			want: "invalid admission request: decoding the Pod object: " +
				"json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container",
		},
		{
			name: "a workload on the pod path", handler: NewPodMutator(engine, logr.Discard(), nil), fixture: "statefulset-create-stateful-multi",
			want: "statekeeper does not handle statefulsets.apps on this path",
		},
		{
			name: "a pod on the workload path", handler: NewMutator(engine, logr.Discard(), nil), fixture: "pod-create-stateful-multi",
			want: "statekeeper does not handle pods on this path",
		},
		{
			name: "a pod on the validating path", handler: NewValidator(engine, logr.Discard(), nil), fixture: "pod-create-stateful-multi",
			want: "statekeeper does not handle pods on this path",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readFixture(t, tt.fixture)
			assert.Equal(t, answer(t, body, badRequest(tt.want)), *serve(t, tt.handler, body))
		})
	}
}

func TestPodMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	require.NoError(t, err)
	mutator := NewPodMutator(testEngine(cluster()), logr.Discard(), metrics)
	for _, fixture := range []string{
		"pod-create-stateful-multi",  // mutated
		"pod-create-inject-env",      // mutated
		"pod-create-unmanaged-owner", // skipped
		"pod-create-no-owner",        // skipped
		"pod-create-malformed",       // error
	} {
		serve(t, mutator, readFixture(t, fixture))
	}
	assert.Equal(t, map[string]float64{
		"webhook=/mutate-pods operation=CREATE resource=pods outcome=mutated rule=none": 2,
		"webhook=/mutate-pods operation=CREATE resource=pods outcome=skipped rule=none": 2,
		"webhook=/mutate-pods operation=CREATE resource=pods outcome=error rule=none":   1,
	}, counters(t, reg, "statekeeper_admission_decisions_total"))
}
