package server

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// lease is a Lease in memory that the locks of several candidates share,
// behind an API server that can be made unreachable. Like the API server
// it refuses an update made from a stale read.
type lease struct {
	mu      sync.Mutex
	record  *resourcelock.LeaderElectionRecord
	version int
	down    bool
}

var errUnreachable = errors.New("connection refused")

var leases = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (l *lease) holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.record == nil {
		return ""
	}
	return l.record.HolderIdentity
}

// take is another identity writing the Lease, held for an hour.
func (l *lease) take(identity string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := metav1.Now()
	l.record = &resourcelock.LeaderElectionRecord{HolderIdentity: identity, LeaseDurationSeconds: 3600, AcquireTime: now, RenewTime: now}
	l.version++
}

// remove deletes the Lease.
func (l *lease) remove() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.record = nil
	l.version++
}

func (l *lease) setDown(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
}

// memoryLock is one candidate's resourcelock.Interface on a lease.
type memoryLock struct {
	lease    *lease
	identity string
	seen     int // the version of the last read or write
}

func (m *memoryLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	m.lease.mu.Lock()
	defer m.lease.mu.Unlock()
	switch {
	case m.lease.down:
		return nil, nil, errUnreachable
	case m.lease.record == nil:
		return nil, nil, apierrors.NewNotFound(leases, "test")
	}
	m.seen = m.lease.version
	r := *m.lease.record
	raw, err := json.Marshal(r) // as the LeaseLock returns it: the elector compares these to see a change
	return &r, raw, err
}

func (m *memoryLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	m.lease.mu.Lock()
	defer m.lease.mu.Unlock()
	switch {
	case m.lease.down:
		return errUnreachable
	case m.lease.record != nil:
		return apierrors.NewAlreadyExists(leases, "test")
	}
	return m.writeLocked(r)
}

func (m *memoryLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	m.lease.mu.Lock()
	defer m.lease.mu.Unlock()
	switch {
	case m.lease.down:
		return errUnreachable
	case m.lease.record == nil:
		return apierrors.NewNotFound(leases, "test")
	case m.lease.version != m.seen:
		return apierrors.NewConflict(leases, "test", errors.New("the object has been modified"))
	}
	return m.writeLocked(r)
}

func (m *memoryLock) writeLocked(r resourcelock.LeaderElectionRecord) error {
	m.lease.record = &r
	m.lease.version++
	m.seen = m.lease.version
	return nil
}

func (m *memoryLock) RecordEvent(string) {}
func (m *memoryLock) Identity() string   { return m.identity }
func (m *memoryLock) Describe() string   { return "test/lease" }

// terms records the leader's work of one candidate: a term starts when
// lead is called and ends when it returns.
type terms struct {
	lease    *lease
	identity string
	started  chan int
	ended    chan int
	// heldAtEnd is whether the Lease still named the candidate when a
	// term's work ended, by term.
	mu        sync.Mutex
	heldAtEnd []bool
}

func newTerms(l *lease, identity string) *terms {
	return &terms{lease: l, identity: identity, started: make(chan int, 10), ended: make(chan int, 10)}
}

func (ts *terms) lead(ctx context.Context) error {
	ts.mu.Lock()
	n := len(ts.heldAtEnd)
	ts.heldAtEnd = append(ts.heldAtEnd, false)
	ts.mu.Unlock()
	ts.started <- n
	<-ctx.Done()
	ts.mu.Lock()
	ts.heldAtEnd[n] = ts.lease.holder() == ts.identity
	ts.mu.Unlock()
	ts.ended <- n
	return nil
}

// campaignFor runs a campaign of identity on l, with the Lease's timing
// scaled down, until the test ends or stop is called; stop returns
// Start's result.
func campaignFor(t *testing.T, l *lease, identity string) (ts *terms, stop func() error) {
	ts = newTerms(l, identity)
	c := newCampaign(&memoryLock{lease: l, identity: identity}, ts.lead, logr.Discard())
	c.leaseDuration, c.renewDeadline, c.retryPeriod = testTiming()
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- c.Start(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-result })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return ts, stop
}

const eventually = 10 * time.Second

// testTiming is the Lease's timing scaled down. A Lease records whole
// seconds, so one second is the shortest that other candidates respect.
func testTiming() (leaseDuration, renewDeadline, retryPeriod time.Duration) {
	return time.Second, 300 * time.Millisecond, 20 * time.Millisecond
}

func await(t *testing.T, ch <-chan int, want int, what string) {
	t.Helper()
	select {
	case got := <-ch:
		require.Equal(t, want, got, what)
	case <-time.After(eventually):
		t.Fatalf("timed out waiting: %s", what)
	}
}

func TestLosingTheLeaseToAnUnreachableAPIServerEndsOnlyTheTerm(t *testing.T) {
	l := &lease{}
	ts, stop := campaignFor(t, l, "a")
	await(t, ts.started, 0, "the first term starts")
	assert.Equal(t, "a", l.holder())

	l.setDown(true)
	await(t, ts.ended, 0, "the term ends when the Lease cannot be renewed")
	l.setDown(false)
	await(t, ts.started, 1, "a new term once the API server answers")

	require.NoError(t, stop(), "the campaign ran on")
	await(t, ts.ended, 1, "shutdown ends the term")
	assert.True(t, ts.heldAtEnd[1], "on shutdown the work stops before the Lease is released")
	assert.Empty(t, l.holder(), "the Lease released on shutdown")
}

func TestLosingTheLeaseToAnotherIdentity(t *testing.T) {
	l := &lease{}
	ts, _ := campaignFor(t, l, "a")
	await(t, ts.started, 0, "the first term starts")

	l.take("intruder")
	await(t, ts.ended, 0, "the term ends when another identity holds the Lease")
	select {
	case n := <-ts.started:
		t.Fatalf("term %d started while the intruder held the Lease", n)
	case <-time.After(200 * time.Millisecond):
	}
	assert.Equal(t, "intruder", l.holder(), "the campaign leaves a valid Lease of another alone")

	l.remove()
	await(t, ts.started, 1, "a new term once the Lease is free")
	assert.Equal(t, "a", l.holder())
}

func TestOneLeaderAtATime(t *testing.T) {
	l := &lease{}
	first, stopFirst := campaignFor(t, l, "a")
	await(t, first.started, 0, "a leads")
	second, _ := campaignFor(t, l, "b")
	select {
	case <-second.started:
		t.Fatal("b leads while a holds the Lease")
	case <-time.After(200 * time.Millisecond):
	}

	require.NoError(t, stopFirst())
	await(t, first.ended, 0, "a's term ends on shutdown")
	await(t, second.started, 0, "b leads once a released the Lease")
	assert.Equal(t, "b", l.holder())
}

func TestAFailedTermHandsTheLeaseBack(t *testing.T) {
	l := &lease{}
	var mu sync.Mutex
	calls := 0
	lead := func(ctx context.Context) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			return errors.New("cache sync timed out")
		}
		<-ctx.Done()
		return nil
	}
	c := newCampaign(&memoryLock{lease: l, identity: "a"}, lead, logr.Discard())
	c.leaseDuration, c.renewDeadline, c.retryPeriod = testTiming()
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- c.Start(ctx) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 2
	}, eventually, 10*time.Millisecond, "a failed term is followed by another")
	cancel()
	require.NoError(t, <-result, "a failed term does not end the process")
}
