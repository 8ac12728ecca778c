package audit

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
)

// ControllerName names the audit in logs and controller metrics.
const ControllerName = "audit"

// eventAction is the events.k8s.io "action" of the audit's Events.
const eventAction = "Audit"

// minGap is the least time between two passes over one namespace: a burst of
// changes (a Helm release, a thousand workloads created by a script) is
// audited a few times, not once per object.
const minGap = 2 * time.Second

// Options configure the audit.
type Options struct {
	Engine *review.Engine
	// Interval is the period of full passes; 0 means none.
	Interval time.Duration
	// Reports writes PolicyReports; without it the findings are metrics,
	// Events and log lines only.
	Reports bool
	// MaxResults bounds the results of one report (DefaultMaxReportResults when 0).
	MaxResults int
	Metrics    *Metrics
}

// Controller is the background audit of `statekeeper serve`: on the elected
// leader it audits a namespace when its objects change, once at start (the
// informers' initial lists) and every interval, and publishes what it finds
// as PolicyReports, a gauge of current violations and one Warning Event per
// new finding. It reconciles one namespace per request: its name is the
// namespace.
type Controller struct {
	engine   *review.Engine
	source   Source
	writer   *ReportWriter
	recorder events.EventRecorder
	metrics  *Metrics
	// log is not the reconcile logger, whose "namespace" is the request's
	// (empty: the request names a Namespace).
	log      logr.Logger
	interval time.Duration
	max      int

	// state is per namespace: the findings last published and when. Only
	// the controller's one worker touches it.
	state map[string]*namespaceState
	now   func() time.Time
}

type namespaceState struct {
	// messages are the published findings, by key: a finding whose message
	// is already here gets no new Event.
	messages map[Key]string
	last     time.Time
}

// SetupWithManager registers the audit with mgr; the manager's leader
// election applies. It needs list and watch on Deployments, StatefulSets,
// HorizontalPodAutoscalers, PersistentVolumeClaims, Services and Namespaces,
// create and patch on events.k8s.io Events and, with Reports, get, list,
// create, update and delete on policyreports.wgpolicyk8s.io.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	a := &Controller{
		engine:   opts.Engine,
		source:   ReaderSource{Reader: mgr.GetCache()},
		recorder: mgr.GetEventRecorder(policy.ManagerName),
		metrics:  opts.Metrics,
		log:      mgr.GetLogger().WithName(ControllerName),
		interval: opts.Interval,
		max:      opts.MaxResults,
		state:    map[string]*namespaceState{},
		now:      time.Now,
	}
	if opts.Reports {
		a.writer = &ReportWriter{Client: mgr.GetClient()}
	}
	byNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.GetNamespace()}}}
	})
	byName := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.GetName()}}}
	})
	// Status updates of workloads and HPAs change nothing the audited
	// rules read; claims (their bound access modes), Services and
	// namespaces (the mode label) matter whatever changed.
	specOrMetadata := builder.WithPredicates(predicate.Or(
		predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		Watches(&appsv1.Deployment{}, byNamespace, specOrMetadata).
		Watches(&appsv1.StatefulSet{}, byNamespace, specOrMetadata).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, byNamespace, specOrMetadata).
		Watches(&corev1.PersistentVolumeClaim{}, byNamespace).
		Watches(&corev1.Service{}, byNamespace).
		Watches(&corev1.Namespace{}, byName).
		// One worker: passes over one namespace must not overlap, and the
		// state map is unlocked.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(a)
}

// Reconcile audits the namespace req.Name.
func (a *Controller) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := req.Name
	st := a.state[ns]
	if st == nil {
		st = &namespaceState{}
		a.state[ns] = st
	}
	if wait := minGap - a.now().Sub(st.last); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	start := a.now()
	st.last = start

	result, err := Namespace(ctx, a.engine, a.source, ns)
	if err != nil {
		return reconcile.Result{}, err
	}
	var writes ReportWrites
	stored, err := a.stored(ctx, ns)
	if err != nil {
		return reconcile.Result{}, err
	}
	if stored != nil {
		if st.messages == nil {
			// The first pass here since this replica leads: what the
			// reports say was announced by the previous leader.
			st.messages = messagesOf(stored)
		}
		desired := Reports(result, FirstFoundIn(stored), start, a.max)
		if writes, err = a.writer.Sync(ctx, stored, desired); err != nil {
			return reconcile.Result{}, err
		}
	}
	a.announce(result, st)
	a.metrics.set(ns, countsOf(result.Findings))
	a.metrics.observe(a.now().Sub(start).Seconds())
	a.log.V(logLevel(result, writes)).Info("audited namespace",
		"namespace", ns, "objects", len(result.Audited), "findings", len(result.Findings),
		"reportsCreated", writes.Created, "reportsUpdated", writes.Updated, "reportsDeleted", writes.Deleted,
		"seconds", a.now().Sub(start).Seconds())
	if len(result.Audited) == 0 && len(st.messages) == 0 {
		delete(a.state, ns) // keep no state for namespaces with nothing to audit
	}
	return reconcile.Result{RequeueAfter: a.interval}, nil
}

// stored returns the namespace's reports, or nil when none are written: no
// writer, or the PolicyReport kind is not served (the CRD is missing or not
// yet established; the client's REST mapper looks again on the next pass).
func (a *Controller) stored(ctx context.Context, ns string) ([]PolicyReport, error) {
	if a.writer == nil {
		return nil, nil
	}
	stored, err := a.writer.Stored(ctx, ns)
	if meta.IsNoMatchError(err) {
		a.log.Error(err, "writing no policy report: the PolicyReport kind is not served; install its CRD (the chart's audit.reports.installCRD)",
			"namespace", ns)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if stored == nil {
		stored = []PolicyReport{}
	}
	return stored, nil
}

// announce records a Warning Event on each object for each finding that is
// new or whose message changed, and remembers the findings.
func (a *Controller) announce(result NamespaceAudit, st *namespaceState) {
	now := make(map[Key]string, len(result.Findings))
	for _, f := range result.Findings {
		now[f.Key()] = f.Message
		if st.messages[f.Key()] == f.Message {
			continue
		}
		a.recorder.Eventf(regarding(f.Object), nil, corev1.EventTypeWarning, string(f.Rule), eventAction,
			"%s [%s]", f.Message, f.Rule)
	}
	st.messages = now
}

// regarding is the object an Event is about; the recorder needs only its
// kind, name, namespace and uid.
func regarding(o Object) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: o.APIVersion, Kind: o.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, UID: o.UID},
	}
}

func messagesOf(reports []PolicyReport) map[Key]string {
	out := map[Key]string{}
	for _, r := range reports {
		for _, res := range r.Results {
			if k, ok := res.key(); ok {
				out[k] = res.Message
			}
		}
	}
	return out
}

func countsOf(findings []Finding) map[[2]string]int {
	out := map[[2]string]int{}
	for _, f := range findings {
		out[[2]string{string(f.Rule), string(f.Result)}]++
	}
	return out
}

// logLevel logs passes that found or wrote something at info, the rest at debug.
func logLevel(result NamespaceAudit, writes ReportWrites) int {
	if len(result.Findings) > 0 || writes.Total() > 0 {
		return 0
	}
	return 1
}

var _ reconcile.Reconciler = (*Controller)(nil)
