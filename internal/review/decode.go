package review

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	sigsjson "sigs.k8s.io/json"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// decodeWorkload returns a Deployment or StatefulSet request object, decoded
// once, as a policy.Workload, with its keys where the manifest writes them.
func decodeWorkload(kind policy.Kind, decoded runtime.Object, raw []byte) (policy.Workload, policy.WrittenKeys, error) {
	switch kind {
	case policy.KindDeployment:
		d, err := objectOf[appsv1.Deployment](decoded, raw, string(kind))
		if err != nil {
			return policy.Workload{}, policy.WrittenKeys{}, err
		}
		return policy.FromDeployment(d), policy.WrittenKeysOf(&d.ObjectMeta, &d.Spec.Template), nil
	case policy.KindStatefulSet:
		s, err := objectOf[appsv1.StatefulSet](decoded, raw, string(kind))
		if err != nil {
			return policy.Workload{}, policy.WrittenKeys{}, err
		}
		return policy.FromStatefulSet(s), policy.WrittenKeysOf(&s.ObjectMeta, &s.Spec.Template), nil
	default:
		return policy.Workload{}, policy.WrittenKeys{}, fmt.Errorf("%w: unknown workload kind %q", ErrInvalidRequest, kind)
	}
}

// objectOf returns a request object of kind: the one the caller decoded, or
// raw decoded now. Either way the body's own kind must be the one expected,
// so that a crafted request cannot pass one kind off as another.
func objectOf[T any, PT interface {
	*T
	runtime.Object
}](decoded runtime.Object, raw []byte, kind string) (PT, error) {
	var obj PT
	if decoded != nil {
		var ok bool
		if obj, ok = decoded.(PT); !ok {
			return nil, fmt.Errorf("%w: expected a %s object, got %T", ErrInvalidRequest, kind, decoded)
		}
	} else {
		if len(raw) == 0 {
			return nil, fmt.Errorf("%w: the request carries no %s object", ErrInvalidRequest, kind)
		}
		obj = PT(new(T))
		// What the API machinery's JSON serializer decodes a typed object
		// with (case-sensitive keys); the kind check below is the one part
		// of its envelope handling a request needs, with an error that
		// names the kinds.
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, obj); err != nil {
			return nil, fmt.Errorf("%w: decoding the %s object: %v", ErrInvalidRequest, kind, err)
		}
	}
	if got := obj.GetObjectKind().GroupVersionKind().Kind; got != kind {
		return nil, fmt.Errorf("%w: expected a %s object, got kind %q", ErrInvalidRequest, kind, got)
	}
	return obj, nil
}
