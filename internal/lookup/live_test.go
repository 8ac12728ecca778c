package lookup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// apiServer stands in for mgr.GetAPIReader(): it counts the GETs it serves,
// and holds each one until release is closed when release is set.
type apiServer struct {
	client.Reader
	gets    atomic.Int64
	release chan struct{}
	fail    error
}

func newAPIServer(objs ...client.Object) *apiServer {
	return &apiServer{Reader: fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()}
}

func (a *apiServer) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	a.gets.Add(1)
	if a.release != nil {
		<-a.release
	}
	if a.fail != nil {
		return a.fail
	}
	return a.Reader.Get(ctx, key, obj, opts...)
}

// emptyCache is an informer cache that holds nothing: every lookup misses.
func emptyCache() client.Reader {
	return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
}

// testLiveOptions are the defaults with round numbers.
func testLiveOptions() LiveReadOptions {
	return LiveReadOptions{MissTTL: 5 * time.Second, MaxMisses: 100, QPS: 10, Burst: 20, MaxWait: time.Second, Timeout: 5 * time.Second}
}

// concurrently runs n calls of f at once and returns their errors.
func concurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errs
}

func TestLiveReadsOfOneMissAreCoalescedAndRemembered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newAPIServer()
		api.release = make(chan struct{})
		c := newCache(emptyCache(), api, testLiveOptions())
		ctx := context.Background()

		done := make(chan []error)
		go func() {
			done <- concurrently(10, func(int) error {
				mode, ok, err := c.NamespaceMode(ctx, "crafted")
				if mode != "" || ok {
					return fmt.Errorf("a missing namespace has no mode, got %q %v", mode, ok)
				}
				return err
			})
		}()
		synctest.Wait() // every caller is waiting on the one GET
		close(api.release)
		assert.Equal(t, make([]error, 10), <-done)
		assert.Equal(t, int64(1), api.gets.Load(), "ten concurrent misses, one GET")

		concurrently(10, func(int) error { _, _, err := c.NamespaceMode(ctx, "crafted"); return err })
		assert.Equal(t, int64(1), api.gets.Load(), "a miss asked again within MissTTL is remembered")

		time.Sleep(testLiveOptions().MissTTL + time.Millisecond)
		_, _, err := c.NamespaceMode(ctx, "crafted")
		require.NoError(t, err)
		assert.Equal(t, int64(2), api.gets.Load(), "a remembered miss expires after MissTTL")
	})
}

func TestLiveReadsAreRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newAPIServer()
		opts := testLiveOptions()
		// Half a token's interval past a whole number of tokens: no read's
		// turn falls on the MaxWait boundary itself, where the limiter's
		// answer would depend on the float arithmetic of its clock.
		opts.MaxWait += time.Duration(float64(time.Second) / (2 * opts.QPS))
		c := newCache(emptyCache(), api, opts)
		ctx := context.Background()

		// 100 crafted requests at once, each naming another namespace that
		// does not exist: no two coalesce, none is remembered yet.
		errs := concurrently(100, func(i int) error {
			_, _, err := c.NamespaceMode(ctx, fmt.Sprintf("crafted-%d", i))
			return err
		})
		throttled := 0
		for _, err := range errs {
			if errors.Is(err, ErrLiveReadsThrottled) {
				throttled++
			} else {
				require.NoError(t, err)
			}
		}
		// The burst, then what QPS refills within MaxWait.
		allowed := opts.Burst + int(opts.QPS*opts.MaxWait.Seconds())
		assert.Equal(t, int64(allowed), api.gets.Load(), "GETs")
		assert.Equal(t, 100-allowed, throttled, "reads refused with ErrLiveReadsThrottled")

		time.Sleep(10 * time.Second)
		_, _, err := c.NamespaceMode(ctx, "crafted-later")
		require.NoError(t, err, "the budget refills")
	})
}

func TestLiveReadFoundIsNotRememberedAndNotShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		live := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", UID: "uid-1"}}
		api := newAPIServer(live)
		api.release = make(chan struct{})
		c := newCache(emptyCache(), api, testLiveOptions())
		ctx := context.Background()

		got := make([]*appsv1.StatefulSet, 5)
		done := make(chan []error)
		go func() {
			done <- concurrently(5, func(i int) (err error) {
				got[i], err = c.StatefulSet(ctx, "shop", "db", "uid-1")
				return err
			})
		}()
		synctest.Wait()
		close(api.release)
		assert.Equal(t, make([]error, 5), <-done)
		assert.Equal(t, int64(1), api.gets.Load())
		for i := range got {
			require.NotNil(t, got[i])
			assert.Equal(t, "uid-1", string(got[i].UID))
		}
		got[0].Labels = map[string]string{"changed": "by one caller"}
		assert.Nil(t, got[1].Labels, "each caller gets its own copy")

		_, err := c.StatefulSet(ctx, "shop", "db", "uid-1")
		require.NoError(t, err)
		assert.Equal(t, int64(2), api.gets.Load(), "an object found is not remembered: the informer will deliver it")
	})
}

func TestLiveReadRemembersAMismatchPerWantedUID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newAPIServer(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", UID: "uid-1"}})
		c := newCache(emptyCache(), api, testLiveOptions())
		ctx := context.Background()

		for range 3 {
			sts, err := c.StatefulSet(ctx, "shop", "db", "uid-crafted")
			require.NoError(t, err)
			assert.Nil(t, sts, "another incarnation is not the owner")
		}
		assert.Equal(t, int64(1), api.gets.Load(), "the mismatch is remembered for that uid")

		sts, err := c.StatefulSet(ctx, "shop", "db", "uid-1")
		require.NoError(t, err)
		require.NotNil(t, sts, "another uid is another question")
		assert.Equal(t, int64(2), api.gets.Load())
	})
}

func TestLiveReadErrorsAreNotRemembered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newAPIServer()
		api.fail = errors.New("connection refused")
		c := newCache(emptyCache(), api, testLiveOptions())
		ctx := context.Background()

		_, _, err := c.NamespaceMode(ctx, "fresh")
		require.EqualError(t, err, "connection refused")
		api.fail = nil
		_, _, err = c.NamespaceMode(ctx, "fresh")
		require.NoError(t, err)
		assert.Equal(t, int64(2), api.gets.Load())
	})
}

// A caller that gives up (its admission request timed out) leaves the shared
// read running for the others.
func TestLiveReadOutlivesACallerThatGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newAPIServer(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh", Labels: map[string]string{policy.LabelMode: "warn"}}})
		api.release = make(chan struct{})
		c := newCache(emptyCache(), api, testLiveOptions())

		first, cancel := context.WithCancel(context.Background())
		firstErr := make(chan error)
		go func() { _, _, err := c.NamespaceMode(first, "fresh"); firstErr <- err }()
		synctest.Wait()
		type answer struct {
			mode string
			err  error
		}
		second := make(chan answer)
		go func() { mode, _, err := c.NamespaceMode(context.Background(), "fresh"); second <- answer{mode, err} }()
		synctest.Wait()

		cancel()
		assert.ErrorIs(t, <-firstErr, context.Canceled)
		close(api.release)
		assert.Equal(t, answer{mode: "warn"}, <-second)
		assert.Equal(t, int64(1), api.gets.Load())
	})
}

// The headless-conflict rule reads Services from the cache alone: a stateful
// StatefulSet's Service usually does not exist yet, so a live read of misses
// would be a GET per create.
func TestServiceIsNeverReadLive(t *testing.T) {
	api := newAPIServer(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-headless"}})
	c := newCache(emptyCache(), api, testLiveOptions())
	svc, err := c.Service(context.Background(), "shop", "db-headless")
	require.NoError(t, err)
	assert.Nil(t, svc)
	assert.Equal(t, int64(0), api.gets.Load())
}
