package policy

import (
	"maps"
	"strings"
)

// EffectiveKeys is the one precedence of statekeeper's keys on a workload:
// own (the workload's labels, or its annotations) and, for each key under
// KeyPrefix that own lacks, the value template (its pod template's labels,
// or annotations) gives it. Many charts let their users label only the pods
// (podLabels, podAnnotations), so a type given there must count; the
// workload's own metadata wins key by key. Other keys are never taken from
// the template.
//
// Neither map is written, so views of cached objects can call it: own itself
// is returned when the template adds nothing, else a new map.
func EffectiveKeys(own, template map[string]string) map[string]string {
	var merged map[string]string
	for key, value := range template {
		if _, owned := own[key]; owned || !strings.HasPrefix(key, KeyPrefix) {
			continue
		}
		if merged == nil {
			merged = make(map[string]string, len(own)+1)
			maps.Copy(merged, own)
		}
		merged[key] = value
	}
	if merged == nil {
		return own
	}
	return merged
}

// statekeeperKeys returns the keys under KeyPrefix of m (nil when there are
// none): what a trimmed copy keeps of a pod template's annotations.
func statekeeperKeys(m map[string]string) map[string]string {
	var out map[string]string
	for key, value := range m {
		if strings.HasPrefix(key, KeyPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[key] = value
		}
	}
	return out
}
