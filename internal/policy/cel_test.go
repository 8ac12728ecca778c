package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCELValidationsAreTheCatalogs: the policy has validations for exactly
// the rules the catalog marks CEL-decidable, and only rules that deny (a
// policy's validation denies, in enforce namespaces).
func TestCELValidationsAreTheCatalogs(t *testing.T) {
	var marked, validated []Rule
	for _, d := range Rules {
		if d.CEL != CELNone {
			marked = append(marked, d.Rule)
			assert.True(t, d.Denies, "%s is marked CEL-decidable but never denies", d.Rule)
		}
	}
	seen := map[Rule]bool{}
	for _, v := range CELValidations() {
		if !seen[v.Rule] {
			seen[v.Rule] = true
			validated = append(validated, v.Rule)
		}
	}
	assert.Equal(t, marked, validated, "the validations follow the catalog's order, one rule after the other")
}
