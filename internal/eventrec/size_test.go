package eventrec

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
)

// nopSink takes every write.
type nopSink struct{ n chan struct{} }

func (s nopSink) Create(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	s.n <- struct{}{}
	return ev, nil
}
func (s nopSink) Update(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	return ev, nil
}
func (s nopSink) Patch(_ context.Context, ev *eventsv1.Event, _ []byte) (*eventsv1.Event, error) {
	return ev, nil
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// What each Event written costs while it is kept for series detection,
// here and in client-go's broadcaster, with Events like the reconciler's.
func TestWhatAnEventKeeps(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a measurement")
	}
	const n = 5000
	emit := func(rec interface {
		Eventf(regarding, related k8sruntime.Object, eventtype, reason, action, note string, args ...any)
	}, sink nopSink) {
		for i := range n {
			s := statefulSet()
			s.Name = fmt.Sprintf("db-%05d", i)
			s.UID = types.UID(fmt.Sprintf("6f1c1d3e-0d7b-4a53-9c1e-%012d", i))
			s.ResourceVersion = fmt.Sprint(100000 + i)
			svc := service()
			svc.Name = s.Name + "-headless"
			rec.Eventf(s, svc, corev1.EventTypeNormal, "ServiceCreated", "Reconcile", "created headless service %q", svc.Name)
			<-sink.n
		}
		time.Sleep(100 * time.Millisecond) // the last writes return
	}

	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	own := nopSink{n: make(chan struct{}, 1)}
	b := NewWithSink(own, f.b.scheme, logr.Discard())
	go func() { _ = b.Start(ctx) }()
	before := liveHeap()
	emit(b.NewRecorder("statekeeper"), own)
	ownPer := float64(liveHeap()-before) / n
	runtime.KeepAlive(b)

	cg := nopSink{n: make(chan struct{}, 1)}
	cgb := events.NewBroadcaster(cg)
	if err := cgb.StartRecordingToSinkWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	before = liveHeap()
	emit(cgb.NewRecorder(f.b.scheme, "statekeeper"), cg)
	cgPer := float64(liveHeap()-before) / n
	runtime.KeepAlive(cgb)
	t.Logf("live heap per Event kept: eventrec %.0f bytes, client-go %.0f bytes", ownPer, cgPer)
	if ownPer > 300 {
		t.Errorf("eventrec keeps %.0f bytes per Event", ownPer)
	}
}
