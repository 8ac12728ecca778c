// Package eventrec records events.k8s.io/v1 Events as client-go's events
// broadcaster does (k8s.io/client-go/tools/events), keeping less of them.
//
// client-go's broadcaster, which controller-runtime's GetEventRecorder uses
// and cannot be given another, keeps a deep copy of every Event it wrote for
// 6 to 12 minutes, keyed by two whole object references: when the same
// Event (same type, reason, action, reporting controller and instance,
// regarding and related object) comes again within that time, it becomes a
// series, one Event whose series.count grows, instead of a new Event. That
// copy is about 1.2 KiB, and statekeeper records about three Events for
// each StatefulSet it is given (its Service, its disruption budget, the
// audit's findings): 3.6 MiB of live heap for 1,000 StatefulSets created
// together.
//
// Broadcaster does the same series detection with the same API requests,
// keeping of each Event only a hash of that key, its name and three
// timestamps (about 160 bytes, against 1.3 KiB in client-go's broadcaster:
// TestWhatAnEventKeeps); only a series (an Event that came again) also
// keeps its latest occurrence, to write its final count. For users
// nothing changes: the same Events are written, an Event repeated within
// six minutes is counted in one Event's series (created, then patched to
// count 2, its final count written once it has not come again for six
// minutes, and refreshed every 30 minutes while it keeps coming), and a
// failed write is retried as client-go does.
package eventrec

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"
	"k8s.io/client-go/tools/reference"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// The timing of client-go's events broadcaster (tools/events,
// event_broadcaster.go), kept.
const (
	// seriesWindow: an Event that comes again within this time of its last
	// occurrence is counted in its series (client-go's finishTime).
	seriesWindow = 6 * time.Minute
	// refreshPeriod: a series still going is written again this often, so
	// that the API server keeps it (client-go's refreshTime).
	refreshPeriod = 30 * time.Minute
	// maxTries is how often a write is tried (client-go's maxTriesPerEvent),
	// retryDelay the pause between tries, ±25 %.
	maxTries   = 12
	retryDelay = 10 * time.Second
	// queueLength is the Events waiting to be written before Eventf hands
	// one to a goroutine of its own (client-go's maxQueuedEvents).
	queueLength = 1000
)

// sweepPeriod is how often ended series and old Events are let go: every
// minute, so that an Event is forgotten 6 to 7 minutes after its last
// occurrence (client-go sweeps every 6 minutes, so 6 to 12).
const sweepPeriod = time.Minute

// writers write Events to the API server at once, as client-go writes each
// Event from a goroutine of its own.
const writers = 4

// Broadcaster writes the Events of its recorders to the API server, with
// client-go's series detection. It is a manager runnable: Start writes
// until its context ends. One serves the whole process, so that an Event
// repeated by two controllers' recorders of the same name is one series,
// as with client-go.
type Broadcaster struct {
	sink   events.EventSink
	scheme *runtime.Scheme
	log    logr.Logger
	host   string
	queue  chan *write
	done   chan struct{}
	stop   sync.Once

	// now, after and retryDelay are time, for tests.
	now        func() time.Time
	after      func(time.Duration, func())
	retryDelay time.Duration

	mu   sync.Mutex
	sent map[key]entry
}

// key identifies Events that form one series: a hash of what client-go
// compares (its eventKey), so the cache keeps 16 bytes instead of two
// whole object references. Two different Events would share a series only
// if their SHA-256 agreed on 128 bits.
type key [16]byte

// entry is what is kept of an Event written within the series window.
type entry struct {
	// name is the Event's name in the API server.
	name string
	// first is the first occurrence (the Event's eventTime), last the
	// latest, written when the count was last written; Unix nanoseconds.
	first, last, written int64
	// count is 1 for a single Event, the series count after that;
	// writtenCount is the count the API server was last sent.
	count, writtenCount int32
	// latest is a series' latest occurrence (nil for a single Event), to
	// write its count; its note may differ from the first occurrence's.
	latest *eventsv1.Event
}

// write is one Event to write, and how often it was tried.
type write struct {
	event *eventsv1.Event
	tries int
}

// New returns a Broadcaster that writes to the events.k8s.io/v1 API of
// the cluster rc names, through httpClient (the manager's), with scheme
// to name the kinds of the objects Events are about.
func New(rc *rest.Config, httpClient *http.Client, scheme *runtime.Scheme, log logr.Logger) (*Broadcaster, error) {
	client, err := eventsv1client.NewForConfigAndClient(rc, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building the events client: %w", err)
	}
	return NewWithSink(&events.EventSinkImpl{Interface: client}, scheme, log), nil
}

// NewWithSink returns a Broadcaster that writes to sink.
func NewWithSink(sink events.EventSink, scheme *runtime.Scheme, log logr.Logger) *Broadcaster {
	host, _ := os.Hostname()
	return &Broadcaster{
		sink: sink, scheme: scheme, log: log, host: host,
		queue: make(chan *write, queueLength), done: make(chan struct{}),
		now: time.Now, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }, retryDelay: retryDelay,
		sent: map[key]entry{},
	}
}

// NeedLeaderElection is false: every replica's controllers may record.
func (b *Broadcaster) NeedLeaderElection() bool { return false }

// Start writes Events until ctx ends; Events recorded after that are
// dropped. Writes in flight when ctx ends are cut short, as client-go's
// are when its broadcaster stops.
func (b *Broadcaster) Start(ctx context.Context) error {
	defer b.stop.Do(func() { close(b.done) })
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case w := <-b.queue:
					b.process(ctx, w)
				}
			}
		})
	}
	tick := time.NewTicker(sweepPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
			b.sweep()
		}
	}
}

// NewRecorder returns a recorder whose Events name reportingController,
// and reportingController-<hostname> as the instance (as client-go's).
func (b *Broadcaster) NewRecorder(reportingController string) recorder.EventRecorder {
	return &eventRecorder{b: b, controller: reportingController, instance: reportingController + "-" + b.host}
}

type eventRecorder struct {
	b                    *Broadcaster
	controller, instance string
}

// Eventf records an Event about regarding (and related, when not nil).
func (r *eventRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.b.record(r, regarding, related, nil, eventtype, reason, action, note, args)
}

// AnnotatedEventf records an Event with annotations.
func (r *eventRecorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args ...any) {
	r.b.record(r, regarding, related, annotations, eventtype, reason, action, note, args)
}

// record builds the Event as client-go's recorder does and queues it.
func (b *Broadcaster) record(r *eventRecorder, regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args []any) {
	now := b.now()
	message := fmt.Sprintf(note, args...)
	refRegarding, err := reference.GetReference(b.scheme, regarding)
	if err != nil {
		b.log.Error(err, "Could not construct reference, will not report event", "object", regarding,
			"eventType", eventtype, "reason", reason, "message", message)
		return
	}
	var refRelated *corev1.ObjectReference
	if related != nil {
		if refRelated, err = reference.GetReference(b.scheme, related); err != nil {
			b.log.V(9).Info("Could not construct reference", "object", related, "err", err)
		}
	}
	if !util.ValidateEventType(eventtype) {
		b.log.Error(nil, "Unsupported event type", "eventType", eventtype)
		return
	}
	namespace := refRegarding.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:        util.GenerateEventName(refRegarding.Name, now.UnixNano()),
			Namespace:   namespace,
			Annotations: annotations,
		},
		EventTime:           metav1.MicroTime{Time: now},
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *refRegarding,
		Related:             refRelated,
		Note:                message,
		Type:                eventtype,
	}
	// What controller-runtime's recorder logs of each Event.
	b.log.V(1).Info("Event occurred", "object", refRegarding.Namespace+"/"+refRegarding.Name, "kind", refRegarding.Kind,
		"apiVersion", refRegarding.APIVersion, "type", eventtype, "reason", reason, "action", action, "note", message)
	b.enqueue(&write{event: ev})
}

// enqueue hands w to the writers. When the queue is full it waits in a
// goroutine of its own, so that the recording controller never waits
// (client-go hands every Event to a goroutine).
func (b *Broadcaster) enqueue(w *write) {
	select {
	case b.queue <- w:
	case <-b.done:
	default:
		go func() {
			select {
			case b.queue <- w:
			case <-b.done:
			}
		}()
	}
}

// process writes one Event: a new one is created; one seen within the
// series window becomes (or counts in) that Event's series.
func (b *Broadcaster) process(ctx context.Context, w *write) {
	if w.tries == 0 {
		if w.event = b.observe(w.event); w.event == nil {
			return
		}
	}
	retry := b.send(ctx, w.event)
	if !retry {
		return
	}
	w.tries++
	if w.tries >= maxTries {
		b.log.Error(nil, "Unable to write event (retry limit exceeded!)", "event", w.event)
		return
	}
	jitter := time.Duration(float64(b.retryDelay) * (0.75 + rand.Float64()/2))
	b.after(jitter, func() { b.enqueue(w) })
}

// observe counts ev in the cache and returns what to write: ev itself when
// it is new; the series, patched to count 2, at its first repetition;
// nothing at later ones (the count is written when the series ends or is
// refreshed, as client-go does).
func (b *Broadcaster) observe(ev *eventsv1.Event) *eventsv1.Event {
	k := keyOf(ev)
	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	e, seen := b.sent[k]
	if !seen {
		b.sent[k] = entry{name: ev.Name, first: ev.EventTime.UnixNano(), last: now, written: now, count: 1, writtenCount: 1}
		return ev
	}
	e.count++
	e.last = now
	e.latest = ev
	if e.count > 2 {
		b.sent[k] = e
		return nil
	}
	e.written, e.writtenCount = now, e.count
	b.sent[k] = e
	return seriesEvent(e)
}

// seriesEvent is e's latest occurrence as its series: the name and event
// time of the first, the count and time of the latest.
func seriesEvent(e entry) *eventsv1.Event {
	ev := *e.latest
	ev.Name = e.name
	ev.EventTime = metav1.MicroTime{Time: time.Unix(0, e.first)}
	ev.Series = &eventsv1.EventSeries{Count: e.count, LastObservedTime: metav1.MicroTime{Time: time.Unix(0, e.last)}}
	return &ev
}

// sweep forgets the Events whose series window has passed, writing the
// final count of a series not written yet, and writes the count of a
// series still going every refreshPeriod.
func (b *Broadcaster) sweep() {
	now := b.now()
	ended := now.Add(-seriesWindow).UnixNano()
	stale := now.Add(-refreshPeriod).UnixNano()
	var writes []*eventsv1.Event
	b.mu.Lock()
	for k, e := range b.sent {
		switch {
		case e.last < ended:
			if e.count > e.writtenCount {
				writes = append(writes, seriesEvent(e))
			}
			delete(b.sent, k)
		case e.count >= 2 && e.written < stale:
			e.written, e.writtenCount = now.UnixNano(), e.count
			b.sent[k] = e
			writes = append(writes, seriesEvent(e))
		}
	}
	b.mu.Unlock()
	for _, ev := range writes {
		// tries 1: the series is counted already, write it only.
		b.enqueue(&write{event: ev, tries: 1})
	}
}

// cached is the number of Events the cache keeps, for tests.
func (b *Broadcaster) cached() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sent)
}

// keyOf hashes what makes two Events one series in client-go (its
// getKey): type, action, reason, reporting controller and instance, and
// the regarding and related references (a missing related reference is
// an empty one, as there).
func keyOf(ev *eventsv1.Event) key {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	ref := func(r *corev1.ObjectReference) {
		if r == nil {
			r = &corev1.ObjectReference{}
		}
		for _, s := range []string{r.Kind, r.Namespace, r.Name, string(r.UID), r.APIVersion, r.ResourceVersion, r.FieldPath} {
			field(s)
		}
	}
	for _, s := range []string{ev.Type, ev.Action, ev.Reason, ev.ReportingController, ev.ReportingInstance} {
		field(s)
	}
	ref(&ev.Regarding)
	ref(ev.Related)
	var k key
	copy(k[:], h.Sum(nil))
	return k
}

// send writes ev as client-go's recordEvent does: a series is patched
// (created when it is not found), anything else created. It says whether
// to try again.
func (b *Broadcaster) send(ctx context.Context, ev *eventsv1.Event) (retry bool) {
	var err error
	series := ev.Series != nil
	if series {
		var patch []byte
		// The strategic merge patch client-go computes between the Event
		// without and with its series: the series alone.
		patch, err = json.Marshal(map[string]any{"series": ev.Series})
		if err != nil {
			b.log.Error(err, "Unable to calculate diff, no merge is possible")
			return false
		}
		_, err = b.sink.Patch(ctx, ev, patch)
	}
	if !series || util.IsKeyNotFoundError(err) {
		created := *ev
		created.ResourceVersion = ""
		_, err = b.sink.Create(ctx, &created)
	}
	if err == nil {
		return false
	}
	switch err.(type) {
	case *rest.RequestConstructionError:
		b.log.Error(err, "Unable to construct event (will not retry!)", "event", ev)
		return false
	case *apierrors.StatusError:
		if apierrors.IsAlreadyExists(err) {
			// A series created while its first Event was still being
			// created: patch it next time.
			if series {
				return true
			}
			b.log.V(5).Info("Server rejected event (will not retry!)", "event", ev, "err", err)
		} else {
			b.log.Error(err, "Server rejected event (will not retry!)", "event", ev)
		}
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	b.log.Error(err, "Unable to write event (may retry after sleeping)")
	return true
}
