package policy

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The unknown-key rule: a key under statekeeper.io/ that statekeeper does
// not read where it is written has no effect, and nothing else would say so
// (a typo such as statekeeper.io/deploy_type leaves a workload unmanaged).

// WrittenKeys are a workload's labels and annotations and its pod
// template's, each as the manifest writes them: where a key was written,
// which the Workload view (whose maps may merge the template's keys in)
// does not tell.
type WrittenKeys struct {
	Labels, Annotations                 map[string]string
	TemplateLabels, TemplateAnnotations map[string]string
}

// WrittenKeysOf are the keys written on a workload's metadata and its pod
// template (nil when the object has none).
func WrittenKeysOf(meta *metav1.ObjectMeta, template *corev1.PodTemplateSpec) WrittenKeys {
	k := WrittenKeys{Labels: meta.Labels, Annotations: meta.Annotations}
	if template != nil {
		k.TemplateLabels, k.TemplateAnnotations = template.Labels, template.Annotations
	}
	return k
}

// keyKind is whether a key is written as a label or as an annotation.
type keyKind int

const (
	asLabel keyKind = iota
	asAnnotation
)

// workloadPlace is the place of KnownKeys a workload's key of that kind belongs to.
func (k keyKind) workloadPlace() KeyPlace {
	if k == asLabel {
		return PlaceWorkloadLabel
	}
	return PlaceWorkloadAnnotation
}

var (
	pathLabels              = field.NewPath("metadata", "labels")
	pathTemplateLabels      = field.NewPath("spec", "template", "metadata", "labels")
	pathTemplateAnnotations = field.NewPath("spec", "template", "metadata", "annotations")
)

// checkKeys warns of every key under statekeeper.io/ written on the
// workload or its pod template that statekeeper does not read there: an
// unknown key, with the nearest known one when one is close, or a known key
// in the wrong place, with where it belongs. managed says whether the
// workload is statekeeper's; an unmanaged one is told that it is not, and why.
// Places are judged in the order of WrittenKeys, keys by name.
func checkKeys(w Workload, written WrittenKeys, managed bool) Result {
	places := []struct {
		at   *field.Path
		keys map[string]string
		kind keyKind
	}{
		{pathLabels, written.Labels, asLabel},
		{pathAnnotations, written.Annotations, asAnnotation},
		{pathTemplateLabels, written.TemplateLabels, asLabel},
		{pathTemplateAnnotations, written.TemplateAnnotations, asAnnotation},
	}
	var r Result
	for _, p := range places {
		var keys []string
		for key := range p.keys {
			if strings.HasPrefix(key, KeyPrefix) {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		for _, key := range keys {
			if msg := misplacedOrUnknown(w, key, p.at, p.kind, managed); msg != "" {
				r.Add(warned(RuleUnknownKey, p.at.Key(key), msg))
			}
		}
	}
	return r
}

// misplacedOrUnknown is the unknown-key message about key, written as kind
// in the map at in; "" when statekeeper reads it there.
func misplacedOrUnknown(w Workload, key string, in *field.Path, kind keyKind, managed bool) string {
	places := placesOf(key)
	if slices.Contains(places, kind.workloadPlace()) ||
		(in == pathAnnotations && slices.Contains(places, PlaceRecordedAnnotation)) {
		return ""
	}
	if len(places) > 0 {
		return msgMisplacedKey(w, managed, key, kind, in, places)
	}
	return msgUnknownKey(w, managed, key, in, nearestKnownKey(key))
}

// placesOf lists where statekeeper reads or writes key (none: unknown).
func placesOf(key string) []KeyPlace {
	var places []KeyPlace
	for _, k := range KnownKeys {
		if k.Key == key {
			places = append(places, k.Place)
		}
	}
	return places
}

// nearestKnownKey is the known key users set (not one statekeeper writes
// itself) closest to key, compared without case, when it is close enough to
// be what was meant (at most 2 edits, and at most a third of the name after
// the prefix: "deploy_type" → "deploy-type", "quorom" → "quorum", but
// "replicas" suggests nothing); "" otherwise. Ties go to the first in
// KnownKeys.
func nearestKnownKey(key string) string {
	name := strings.ToLower(strings.TrimPrefix(key, KeyPrefix))
	best, bestDistance := "", 0
	for _, k := range KnownKeys {
		if statekeeperWritesOnly([]KeyPlace{k.Place}) {
			continue
		}
		d := editDistance(name, strings.TrimPrefix(k.Key, KeyPrefix))
		if best == "" || d < bestDistance {
			best, bestDistance = k.Key, d
		}
	}
	if bestDistance > 2 || 3*bestDistance > len([]rune(name)) {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance of a and b (optimal
// string alignment: insertions, deletions, substitutions and transpositions
// of adjacent characters, each costing 1).
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}

// keysOfPlace lists the known keys of a place, in KnownKeys order.
func keysOfPlace(place KeyPlace) []string {
	var keys []string
	for _, k := range KnownKeys {
		if k.Place == place {
			keys = append(keys, k.Key)
		}
	}
	return keys
}

// wherePlace says where a key of that place belongs, for a workload's user.
func wherePlace(place KeyPlace) string {
	switch place {
	case PlaceWorkloadLabel:
		return fmt.Sprintf("a label of the workload (%s) or of its pod template", pathLabels)
	case PlaceWorkloadAnnotation:
		return fmt.Sprintf("an annotation of the workload (%s) or of its pod template", pathAnnotations)
	case PlaceNamespaceLabel:
		return "a label of its namespace"
	case PlacePodAnnotation:
		return fmt.Sprintf("an annotation %s stamps on each pod itself", ManagerName)
	case PlaceRecordedAnnotation:
		return fmt.Sprintf("an annotation %s records on the statefulset itself (%s)", ManagerName, pathAnnotations)
	default:
		return fmt.Sprintf("an annotation %s puts on the claim templates it injects itself", ManagerName)
	}
}

// statekeeperWritesOnly reports whether every place is one statekeeper writes
// itself: the user has no business setting the key anywhere.
func statekeeperWritesOnly(places []KeyPlace) bool {
	for _, p := range places {
		if p != PlacePodAnnotation && p != PlaceClaimTemplateAnnotation && p != PlaceRecordedAnnotation {
			return false
		}
	}
	return true
}

func (k keyKind) String() string {
	if k == asLabel {
		return "a label"
	}
	return "an annotation"
}
