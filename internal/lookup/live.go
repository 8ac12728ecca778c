package lookup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LiveReadOptions bound the reads of objects the cache does not hold. Such a
// read answers a request that names an object the informer has not delivered
// yet (a pod's new StatefulSet, a namespace created in the same apply), and
// also any crafted request naming an object that does not exist: without
// bounds that would be one GET to the API server per request.
type LiveReadOptions struct {
	// MissTTL is how long a read that found nothing is remembered: the same
	// miss asked again within it costs no read.
	MissTTL time.Duration
	// MaxMisses bounds how many misses are remembered; the least recently
	// asked is forgotten first.
	MaxMisses int
	// QPS and Burst limit all live reads of one Cache together.
	QPS   float64
	Burst int
	// MaxWait is how long a read may wait for the rate limit; a read that
	// would wait longer fails with ErrLiveReadsThrottled.
	MaxWait time.Duration
	// Timeout bounds one read, whoever waits for it.
	Timeout time.Duration
}

// DefaultLiveReadOptions are what the server uses. A miss of a real object
// lasts as long as the informer's delay (milliseconds to a second), so the
// budget of 20 reads a second with bursts of 50 covers legitimate misses
// many times over, while it caps what a flood of crafted requests can cost
// the API server.
func DefaultLiveReadOptions() LiveReadOptions {
	return LiveReadOptions{
		MissTTL:   5 * time.Second,
		MaxMisses: 4096,
		QPS:       20,
		Burst:     50,
		MaxWait:   time.Second,
		Timeout:   5 * time.Second,
	}
}

// ErrLiveReadsThrottled is returned when the budget of live reads is spent.
var ErrLiveReadsThrottled = errors.New("too many reads of objects missing from the cache; retry")

// liveReader reads cache misses from the API server: concurrent reads of one
// object share one GET (singleflight), a read that found nothing (or not the
// wanted incarnation) is remembered for MissTTL, and all reads together are
// rate-limited.
type liveReader struct {
	api     client.Reader
	opts    LiveReadOptions
	flight  singleflight.Group
	misses  *utilcache.LRUExpireCache
	limiter *rate.Limiter
}

func newLiveReader(api client.Reader, opts LiveReadOptions) *liveReader {
	return &liveReader{
		api:     api,
		opts:    opts,
		misses:  utilcache.NewLRUExpireCache(opts.MaxMisses),
		limiter: rate.NewLimiter(rate.Limit(opts.QPS), opts.Burst),
	}
}

// objectPointer is a pointer to an API type, such as *corev1.Namespace.
type objectPointer[T any] interface {
	*T
	client.Object
}

// readLive reads the object at key from the API server; nil means it does not
// exist or accept refused it. variant names what accept wants (a uid), so
// that a refusal is remembered for that wish only. Every caller gets its own
// copy.
func readLive[T any, P objectPointer[T]](ctx context.Context, r *liveReader, key client.ObjectKey, variant string, accept func(P) bool) (P, error) {
	flightKey := fmt.Sprintf("%T %s", P(nil), key)
	missKey := flightKey + " " + variant
	if _, remembered := r.misses.Get(missKey); remembered {
		return nil, nil
	}
	// The read is shared by every caller that asks meanwhile, so it must not
	// end when the first caller's request does; each caller stops waiting
	// on its own context instead.
	shared := context.WithoutCancel(ctx)
	result := r.flight.DoChan(flightKey, func() (any, error) {
		return r.get(shared, key, P(new(T)))
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-result:
		if res.Err != nil {
			return nil, res.Err
		}
		obj, _ := res.Val.(P)
		if obj == nil || !accept(obj) {
			r.misses.Add(missKey, struct{}{}, r.opts.MissTTL)
			return nil, nil
		}
		if res.Shared {
			return obj.DeepCopyObject().(P), nil
		}
		return obj, nil
	}
}

// get waits for the rate limit and reads obj; a nil object means not found.
func (r *liveReader) get(ctx context.Context, key client.ObjectKey, obj client.Object) (client.Object, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.MaxWait+r.opts.Timeout)
	defer cancel()
	wait, cancelWait := context.WithTimeout(ctx, r.opts.MaxWait)
	defer cancelWait()
	// Wait fails at once when the wait would outlast MaxWait.
	if err := r.limiter.Wait(wait); err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, ErrLiveReadsThrottled)
	}
	err := r.api.Get(ctx, key, obj)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return obj, nil
}
