package review

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatefulSetSpecHas(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want bool
		err  string
	}{
		{"an API server without KEP-4650 (1.36)",
			`{"components":{"schemas":{"io.k8s.api.apps.v1.StatefulSetSpec":{"properties":{"replicas":{},"volumeClaimTemplates":{}}}}}}`, false, ""},
		{"an API server that knows volumeClaimUpdatePolicy",
			`{"components":{"schemas":{"io.k8s.api.apps.v1.StatefulSetSpec":{"properties":{"volumeClaimTemplates":{},"volumeClaimUpdatePolicy":{}}}}}}`, true, ""},
		{"no StatefulSetSpec", `{"components":{"schemas":{}}}`, false,
			"the OpenAPI of apps/v1 has no io.k8s.api.apps.v1.StatefulSetSpec"},
		{"not JSON", `<html>`, false,
			"decoding the OpenAPI of apps/v1: invalid character '<' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statefulSetSpecHas([]byte(tt.doc), ClaimUpdatePolicyField)
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
