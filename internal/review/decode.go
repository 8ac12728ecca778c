package review

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// decodeWorkload decodes a Deployment or StatefulSet body, once, and views it
// as a policy.Workload.
func decodeWorkload(kind policy.Kind, raw []byte) (policy.Workload, error) {
	switch kind {
	case policy.KindDeployment:
		d := &appsv1.Deployment{}
		if err := decodeObject(raw, string(kind), d); err != nil {
			return policy.Workload{}, err
		}
		return policy.FromDeployment(d), nil
	case policy.KindStatefulSet:
		s := &appsv1.StatefulSet{}
		if err := decodeObject(raw, string(kind), s); err != nil {
			return policy.Workload{}, err
		}
		return policy.FromStatefulSet(s), nil
	default:
		return policy.Workload{}, fmt.Errorf("%w: unknown workload kind %q", ErrInvalidRequest, kind)
	}
}

// decodeObject decodes raw into obj and checks the body's kind, so that a
// crafted request cannot pass one kind off as another.
func decodeObject(raw []byte, kind string, obj runtime.Object) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: the request carries no %s object", ErrInvalidRequest, kind)
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return fmt.Errorf("%w: decoding the %s object: %v", ErrInvalidRequest, kind, err)
	}
	if got := obj.GetObjectKind().GroupVersionKind().Kind; got != kind {
		return fmt.Errorf("%w: expected a %s object, got kind %q", ErrInvalidRequest, kind, got)
	}
	return nil
}
