package main

import (
	"fmt"
	"io"
	"time"
)

// report prints r as Markdown tables, ready for docs/performance.md.
func report(w io.Writer, r result) {
	o := r.options
	c := r.clusterBefore
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	p("## statekeeper's caches with %d StatefulSets, %d Deployments and %d pods", o.statefulSets, o.deployments, o.pods)
	p("")
	p("Measured %s. Before the load the cluster held %d namespaces, %d Deployments, %d StatefulSets, "+
		"%d pods, %d claims and %d statekeeper-managed Services (in the baseline). "+
		"Each reading is the median over %d garbage collections.",
		time.Now().UTC().Format(time.DateTime+" MST"), c.Namespaces, c.Deployments, c.StatefulSets,
		c.Pods, c.Claims, c.ManagedServices, o.gcs)
	if o.clusterShaped {
		p("Each Deployment ran an image of its own and had a headless Service (--cluster-shaped).")
	}
	if o.goMemLimit != "" {
		p("statekeeper ran with GOMEMLIMIT=%s.", o.goMemLimit)
	}
	p("")
	p("| reading | live heap | heap in use | RSS |")
	p("|---|--:|--:|--:|")
	row := func(what string, m memory) {
		p("| %s | %s | %s | %s |", what, mib(m.LiveHeap), mib(m.HeapInuse), mib(m.RSS))
	}
	last := r.deploymentsRead
	row("baseline (empty namespace)", r.baseline)
	row(fmt.Sprintf("+ %d StatefulSets (stateful-multi) and their %d Services", o.statefulSets, o.statefulSets), r.statefulSetsRead)
	row(fmt.Sprintf("+ %d Deployments (unmanaged)", o.deployments), r.deploymentsRead)
	if o.pods > 0 {
		row(fmt.Sprintf("+ %d pods of the Deployments (metadata only; their ReplicaSets are not cached)", o.pods), r.podsRead)
		last = r.podsRead
	}
	row("growth", diff(last, r.baseline))
	p("")
	p("| cost per object | live heap | heap in use | RSS |")
	p("|---|--:|--:|--:|")
	perObject := func(what string, m memory, objects int) {
		if objects == 0 {
			return
		}
		k := float64(objects)
		p("| %s | %s | %s | %s |", what, kib(m.LiveHeap/k), kib(m.HeapInuse/k), kib(m.RSS/k))
	}
	perObject("StatefulSet with its Service", diff(r.statefulSetsRead, r.baseline), o.statefulSets)
	perObject("Deployment", diff(r.deploymentsRead, r.statefulSetsRead), o.deployments)
	if o.pods > 0 {
		perObject("pod (metadata)", diff(r.podsRead, r.deploymentsRead), o.pods)
	}
	p("")
	p("| kind | objects | JSON per object | decoded per object (as cached) | managedFields JSON per object | decoded as served |")
	p("|---|--:|--:|--:|--:|--:|")
	var decoded, withManagedFields, managedJSON, objects int
	for _, s := range r.sizes {
		p("| %s | %d | %s | %s | %s | %s |", s.Kind, s.Objects, kib(s.perObject(s.JSON)), kib(s.perObject(s.Decoded)),
			kib(s.perObject(s.ManagedFieldsJSON)), kib(s.perObject(s.DecodedWithManagedFields)))
		decoded += s.Decoded
		objects += s.Objects
		withManagedFields += s.DecodedWithManagedFields
		managedJSON += s.ManagedFieldsJSON
	}
	e := r.events
	p("| %s (not cached: written, a copy of each kept 6 to 12 minutes) | %d | %s | %s | | |", e.Kind, e.Objects,
		kib(e.perObject(e.JSON)), kib(e.perObject(e.Decoded)))
	p("")
	p("Decoded into Go values (measured in the tool's own heap, after a GC), the %d created objects of the cached kinds "+
		"take %s, %s of the live heap's growth; the rest is the informers' stores and indexes, what "+
		"the copy of each Event that client-go's event broadcaster keeps for 6 to 12 minutes to detect series "+
		"(the Events decoded take %s), and the controllers' work queues. Decoded as served, without the cache's transforms (managedFields, of the workloads the pod "+
		"template's containers), they would take %s, %s more (%s of managedFields JSON).",
		objects, mib(float64(decoded)), percent(float64(decoded), diff(last, r.baseline).LiveHeap),
		mib(float64(e.Decoded)), mib(float64(withManagedFields)), mib(float64(withManagedFields-decoded)), mib(float64(managedJSON)))
	p("")
	p("Workloads written with client-side `kubectl apply` also carry their manifest in the "+
		"kubectl.kubernetes.io/last-applied-configuration annotation, which the cache transform drops: about %s per "+
		"Deployment and %s per StatefulSet of the kinds created here (not created by this tool).",
		kib(float64(r.lastApplied.Deployment)), kib(float64(r.lastApplied.StatefulSet)))
	p("")
	p("| step | took |")
	p("|---|--:|")
	for _, t := range r.timings {
		p("| %s | %s |", t.what, t.took.Round(100*time.Millisecond))
	}
}

func diff(a, b memory) memory {
	return memory{
		LiveHeap:  a.LiveHeap - b.LiveHeap,
		HeapInuse: a.HeapInuse - b.HeapInuse,
		HeapAlloc: a.HeapAlloc - b.HeapAlloc,
		RSS:       a.RSS - b.RSS,
	}
}

func percent(part, whole float64) string {
	if whole == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*part/whole)
}

func mib(bytes float64) string { return fmt.Sprintf("%.1f MiB", bytes/(1<<20)) }
func kib(bytes float64) string { return fmt.Sprintf("%.2f KiB", bytes/(1<<10)) }
