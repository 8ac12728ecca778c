package workloads

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// RulesNotTested returns the admission rules of policy.Rules that no test
// file of dir names, as the message users read ("[kind-switch]") or as the
// constant (policy.RuleKindSwitch): a suite calls it so that a new rule
// cannot be forgotten in it. Rules only the background audit reports are
// left to the audit's own tests.
func RulesNotTested(dir string) ([]policy.Rule, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	var sources strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		sources.Write(b)
	}
	text := sources.String()
	var missing []policy.Rule
	for _, d := range policy.Rules {
		if d.AuditOnly {
			continue
		}
		constant := regexp.MustCompile(`\bpolicy\.` + constantName(d.Rule) + `\b`)
		if !strings.Contains(text, "["+string(d.Rule)+"]") && !constant.MatchString(text) {
			missing = append(missing, d.Rule)
		}
	}
	return missing, nil
}

// constantName is the Go name of a rule's constant: "kind-switch" is RuleKindSwitch.
func constantName(r policy.Rule) string {
	var b strings.Builder
	b.WriteString("Rule")
	for _, part := range strings.Split(string(r), "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
