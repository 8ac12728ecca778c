package eventrec

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// call is one request the fake sink received.
type call struct {
	verb  string // create or patch
	event eventsv1.Event
	patch string
}

// sink is a fake API server for Events: it keeps the Events by name and
// answers NotFound to a patch of an unknown one; fail, when set, answers
// each request first.
type sink struct {
	mu     sync.Mutex
	calls  []call
	stored map[string]bool
	fail   func(verb string) error
}

func (s *sink) do(verb string, ev *eventsv1.Event, patch []byte) (*eventsv1.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(verb); err != nil {
			return nil, err
		}
	}
	s.calls = append(s.calls, call{verb: verb, event: *ev, patch: string(patch)})
	if s.stored == nil {
		s.stored = map[string]bool{}
	}
	switch verb {
	case "patch":
		if !s.stored[ev.Name] {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, ev.Name)
		}
	case "create":
		if s.stored[ev.Name] {
			return nil, apierrors.NewAlreadyExists(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, ev.Name)
		}
		s.stored[ev.Name] = true
	}
	return ev, nil
}

func (s *sink) Create(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	return s.do("create", ev, nil)
}

func (s *sink) Update(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	return s.do("update", ev, nil)
}

func (s *sink) Patch(_ context.Context, ev *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	return s.do("patch", ev, data)
}

func (s *sink) take() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.calls
	s.calls = nil
	return out
}

// fixture is a Broadcaster on a fake sink and a fake clock; its writes are
// processed by drain, not by Start's writers.
type fixture struct {
	b       *Broadcaster
	sink    *sink
	now     time.Time
	retries []func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f := &fixture{sink: &sink{}, now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	f.b = NewWithSink(f.sink, scheme, logr.Discard())
	f.b.host = "host"
	f.b.now = func() time.Time { return f.now }
	f.b.after = func(_ time.Duration, fn func()) { f.retries = append(f.retries, fn) }
	return f
}

// drain writes what is queued.
func (f *fixture) drain() {
	for {
		select {
		case w := <-f.b.queue:
			f.b.process(context.Background(), w)
		default:
			return
		}
	}
}

// advance moves the clock and sweeps as often as the Broadcaster would.
func (f *fixture) advance(d time.Duration) {
	for end := f.now.Add(d); f.now.Before(end); {
		f.now = f.now.Add(sweepPeriod)
		f.b.sweep()
		f.drain()
	}
}

func statefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", UID: "uid-1"}}
}

func service() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-headless", UID: "uid-2"}}
}

func TestAnEventIsWrittenAsClientGoWritesIt(t *testing.T) {
	f := newFixture(t)
	rec := f.b.NewRecorder("statekeeper")
	rec.Eventf(statefulSet(), service(), corev1.EventTypeNormal, "ServiceCreated", "Reconcile", "created headless service %q", "db-headless")
	f.drain()
	calls := f.sink.take()
	if len(calls) != 1 || calls[0].verb != "create" {
		t.Fatalf("calls: %+v", calls)
	}
	ev := calls[0].event
	if !strings.HasPrefix(ev.Name, "db.") || ev.Namespace != "shop" {
		t.Errorf("name %s/%s", ev.Namespace, ev.Name)
	}
	want := eventsv1.Event{
		Type: corev1.EventTypeNormal, Reason: "ServiceCreated", Action: "Reconcile", Note: `created headless service "db-headless"`,
		ReportingController: "statekeeper", ReportingInstance: "statekeeper-host",
	}
	if ev.Type != want.Type || ev.Reason != want.Reason || ev.Action != want.Action || ev.Note != want.Note ||
		ev.ReportingController != want.ReportingController || ev.ReportingInstance != want.ReportingInstance {
		t.Errorf("event %+v", ev)
	}
	if ev.Regarding.Kind != "StatefulSet" || ev.Regarding.APIVersion != "apps/v1" || ev.Regarding.Name != "db" || ev.Regarding.UID != "uid-1" {
		t.Errorf("regarding %+v", ev.Regarding)
	}
	if ev.Related == nil || ev.Related.Kind != "Service" || ev.Related.Name != "db-headless" {
		t.Errorf("related %+v", ev.Related)
	}
	if !ev.EventTime.Time.Equal(f.now) || ev.Series != nil {
		t.Errorf("eventTime %v, series %+v", ev.EventTime, ev.Series)
	}
}

func TestRepeatsBecomeOneSeries(t *testing.T) {
	f := newFixture(t)
	rec := f.b.NewRecorder("statekeeper")
	emit := func(note string) {
		rec.Eventf(statefulSet(), nil, corev1.EventTypeWarning, "ServiceConflict", "Reconcile", "%s", note)
		f.drain()
	}
	emit("first")
	first := f.sink.take()
	if len(first) != 1 || first[0].verb != "create" {
		t.Fatalf("first: %+v", first)
	}
	name := first[0].event.Name

	// Again within the window: the first Event becomes a series of 2.
	f.now = f.now.Add(time.Minute)
	emit("second")
	second := f.sink.take()
	if len(second) != 1 || second[0].verb != "patch" || second[0].event.Name != name {
		t.Fatalf("second: %+v", second)
	}
	if want := `{"series":{"count":2,"lastObservedTime":"2026-12-01T10:01:00.000000Z"}}`; second[0].patch != want {
		t.Errorf("patch %s, want %s", second[0].patch, want)
	}

	// More repeats only count; nothing is written.
	for range 3 {
		f.now = f.now.Add(time.Minute)
		emit("again")
	}
	if calls := f.sink.take(); len(calls) != 0 {
		t.Fatalf("repeats wrote %+v", calls)
	}
	// Another object's Event is not part of the series.
	other := statefulSet()
	other.Name, other.UID = "cache", "uid-3"
	rec.Eventf(other, nil, corev1.EventTypeWarning, "ServiceConflict", "Reconcile", "again")
	f.drain()
	if calls := f.sink.take(); len(calls) != 1 || calls[0].verb != "create" || !strings.HasPrefix(calls[0].event.Name, "cache.") {
		t.Fatalf("another object's Event: %+v", calls)
	}

	// Six minutes without a repeat end the series: its final count (5) is
	// written once, and it is forgotten.
	f.advance(7 * time.Minute)
	final := f.sink.take()
	if len(final) != 1 || final[0].verb != "patch" || final[0].event.Name != name {
		t.Fatalf("final: %+v", final)
	}
	if want := `{"series":{"count":5,"lastObservedTime":"2026-12-01T10:04:00.000000Z"}}`; final[0].patch != want {
		t.Errorf("final patch %s, want %s", final[0].patch, want)
	}
	if n := f.b.cached(); n != 0 {
		t.Errorf("%d Events still cached", n)
	}
	// The same Event now is a new Event.
	emit("later")
	if calls := f.sink.take(); len(calls) != 1 || calls[0].verb != "create" || calls[0].event.Name == name {
		t.Fatalf("after the series: %+v", calls)
	}
}

func TestASingleEventExpires(t *testing.T) {
	f := newFixture(t)
	rec := f.b.NewRecorder("statekeeper")
	rec.Eventf(statefulSet(), nil, corev1.EventTypeNormal, "BudgetCreated", "Reconcile", "created")
	f.drain()
	f.advance(5 * time.Minute)
	if n := f.b.cached(); n != 1 {
		t.Fatalf("%d Events cached within the window, want 1", n)
	}
	f.advance(2 * time.Minute)
	if n := f.b.cached(); n != 0 {
		t.Fatalf("%d Events cached after the window, want 0", n)
	}
	if calls := f.sink.take(); len(calls) != 1 {
		t.Fatalf("an expired single Event was written again: %+v", calls)
	}
}

func TestALongSeriesIsRefreshed(t *testing.T) {
	f := newFixture(t)
	rec := f.b.NewRecorder("statekeeper")
	emit := func() {
		rec.Eventf(statefulSet(), nil, corev1.EventTypeWarning, "single-instance", "Audit", "too many")
		f.drain()
	}
	emit()
	emit()
	f.sink.take()
	// A repeat every five minutes for 35 minutes: refreshed once, after 30.
	for range 7 {
		f.advance(5 * time.Minute)
		emit()
	}
	calls := f.sink.take()
	want := `{"series":{"count":8,"lastObservedTime":"2026-12-01T10:30:00.000000Z"}}`
	if len(calls) != 1 || calls[0].verb != "patch" || calls[0].patch != want {
		t.Fatalf("refresh: %+v, want one patch %s", calls, want)
	}
}

func TestASeriesWhoseEventIsGoneIsCreated(t *testing.T) {
	f := newFixture(t)
	rec := f.b.NewRecorder("statekeeper")
	rec.Eventf(statefulSet(), nil, corev1.EventTypeWarning, "ServiceConflict", "Reconcile", "first")
	f.drain()
	first := f.sink.take()[0].event
	// The Event expired in the API server (its TTL) or was deleted.
	f.sink.stored = nil
	rec.Eventf(statefulSet(), nil, corev1.EventTypeWarning, "ServiceConflict", "Reconcile", "second")
	f.drain()
	calls := f.sink.take()
	if len(calls) != 2 || calls[0].verb != "patch" || calls[1].verb != "create" {
		t.Fatalf("calls: %+v", calls)
	}
	created := calls[1].event
	if created.Name != first.Name || !created.EventTime.Equal(&first.EventTime) || created.Series == nil || created.Series.Count != 2 || created.Note != "second" {
		t.Errorf("created %+v", created)
	}
}

func TestAFailedWriteIsRetried(t *testing.T) {
	f := newFixture(t)
	failures := 2
	f.sink.fail = func(string) error {
		if failures > 0 {
			failures--
			return errors.New("connection refused")
		}
		return nil
	}
	f.b.NewRecorder("statekeeper").Eventf(statefulSet(), nil, corev1.EventTypeNormal, "BudgetCreated", "Reconcile", "created")
	f.drain()
	for len(f.retries) > 0 {
		retry := f.retries[0]
		f.retries = f.retries[1:]
		retry()
		f.drain()
	}
	if calls := f.sink.take(); len(calls) != 1 || calls[0].verb != "create" {
		t.Fatalf("calls: %+v", calls)
	}
	if failures != 0 {
		t.Errorf("%d failures left", failures)
	}

	// A rejected Event is not retried.
	f.sink.fail = func(string) error { return apierrors.NewBadRequest("invalid") }
	f.b.NewRecorder("statekeeper").Eventf(service(), nil, corev1.EventTypeNormal, "Other", "Reconcile", "x")
	f.drain()
	if len(f.retries) != 0 {
		t.Errorf("a rejected Event was retried")
	}
}

func TestAnUnknownEventTypeIsNotRecorded(t *testing.T) {
	f := newFixture(t)
	f.b.NewRecorder("statekeeper").Eventf(statefulSet(), nil, "Odd", "Reason", "Reconcile", "x")
	f.drain()
	if calls := f.sink.take(); len(calls) != 0 {
		t.Fatalf("calls: %+v", calls)
	}
}

// Start writes what Eventf records, and stops with its context.
func TestStartWrites(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.b.Start(ctx) }()
	rec := f.b.NewRecorder("statekeeper")
	for i := range 50 {
		s := statefulSet()
		s.Name = "db-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		rec.Eventf(s, nil, corev1.EventTypeNormal, "BudgetCreated", "Reconcile", "created")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.sink.mu.Lock()
		n := len(f.sink.calls)
		f.sink.mu.Unlock()
		if n == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 50 Events written", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// After Start returned, recording neither blocks nor panics.
	for range queueLength + 10 {
		rec.Eventf(statefulSet(), nil, corev1.EventTypeNormal, "BudgetCreated", "Reconcile", "late")
	}
}

// The series patch is the one client-go computes (createPatchBytesForSeries):
// the strategic merge patch from the Event without its series to the Event
// with it.
func TestTheSeriesPatchIsClientGos(t *testing.T) {
	f := newFixture(t)
	rec := f.b.NewRecorder("statekeeper")
	for range 2 {
		rec.Eventf(statefulSet(), service(), corev1.EventTypeNormal, "ServiceCreated", "Reconcile", "created")
		f.now = f.now.Add(1500 * time.Microsecond)
		f.drain()
	}
	calls := f.sink.take()
	if len(calls) != 2 {
		t.Fatalf("calls: %+v", calls)
	}
	ev := calls[1].event
	old := ev.DeepCopy()
	old.Series = nil
	oldData, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	newData, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	want, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, eventsv1.Event{})
	if err != nil {
		t.Fatal(err)
	}
	if calls[1].patch != string(want) {
		t.Errorf("patch %s, client-go's %s", calls[1].patch, want)
	}
}
