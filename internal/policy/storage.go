package policy

import (
	"fmt"
	"iter"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// The one model of a pod template's storage: which claims, claim templates
// and volumes a workload's pods mount. Every rule, mutation and lookup that
// asks reads it from here.

// ClaimVolume is a pod volume that references a PersistentVolumeClaim.
type ClaimVolume struct {
	// Index is the volume's position in spec.template.spec.volumes.
	Index int
	// Name is the volume's name, Claim the claim's.
	Name, Claim string
	// Mounted is true when some container or init container mounts it or
	// uses it as a block device: the kubelet sets up only those, so only
	// those constrain where and how pods run.
	Mounted bool
}

// Storage is the persistent storage of a workload's pods.
type Storage struct {
	// ClaimVolumes are the pod volumes that reference a claim (generic
	// ephemeral volumes are not persistent and not listed), in spec order.
	ClaimVolumes []ClaimVolume
	// ClaimTemplates are a StatefulSet's volume claim templates.
	ClaimTemplates []corev1.PersistentVolumeClaim
}

// Storage returns the workload's storage.
func (w Workload) Storage() Storage {
	s := Storage{ClaimTemplates: w.ClaimTemplates}
	if w.Template == nil {
		return s
	}
	var used map[string]bool
	for i, v := range w.Template.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		if used == nil {
			used = usedVolumes(&w.Template.Spec)
		}
		s.ClaimVolumes = append(s.ClaimVolumes, ClaimVolume{
			Index: i, Name: v.Name, Claim: v.PersistentVolumeClaim.ClaimName, Mounted: used[v.Name],
		})
	}
	return s
}

// Persistent reports whether the pods keep data in claims: claim volumes or
// claim templates.
func (s Storage) Persistent() bool { return len(s.ClaimVolumes) > 0 || len(s.ClaimTemplates) > 0 }

// ClaimNames are the claims the claim volumes name, once each, in spec order.
func (s Storage) ClaimNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, v := range s.ClaimVolumes {
		if !seen[v.Claim] {
			seen[v.Claim] = true
			names = append(names, v.Claim)
		}
	}
	return names
}

// Mounted yields the claim volumes some container mounts.
func (s Storage) Mounted() iter.Seq[ClaimVolume] {
	return func(yield func(ClaimVolume) bool) {
		for _, v := range s.ClaimVolumes {
			if v.Mounted && !yield(v) {
				return
			}
		}
	}
}

// DataClaims names the claims a workload of that name keeps its data in: its
// claim volumes' claims, and for each claim template the per-ordinal pattern
// the StatefulSet controller creates ("data-db-*").
func (s Storage) DataClaims(workload string) []string {
	names := s.ClaimNames()
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for _, t := range s.ClaimTemplates {
		if n := fmt.Sprintf("%s-%s-*", t.Name, workload); !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

// UnresolvedMounts lists, once each and in start order (init containers
// first), the volume mount names that match neither a pod volume nor a claim
// template: the mounts statekeeper gives a claim template of their own.
func (w Workload) UnresolvedMounts() []string {
	if w.Template == nil {
		return nil
	}
	resolved := map[string]bool{}
	for _, v := range w.Template.Spec.Volumes {
		resolved[v.Name] = true
	}
	for _, t := range w.ClaimTemplates {
		resolved[t.Name] = true
	}
	var names []string
	for c := range podContainers(&w.Template.Spec) {
		for _, mount := range c.VolumeMounts {
			if mount.Name == "" || resolved[mount.Name] {
				continue
			}
			resolved[mount.Name] = true
			names = append(names, mount.Name)
		}
	}
	return names
}

// usedVolumes are the volume names some container mounts or uses as a block device.
func usedVolumes(spec *corev1.PodSpec) map[string]bool {
	used := map[string]bool{}
	for c := range podContainers(spec) {
		for _, m := range c.VolumeMounts {
			used[m.Name] = true
		}
		for _, d := range c.VolumeDevices {
			used[d.Name] = true
		}
	}
	return used
}

// podContainers yields init containers, then containers: the order in which
// the kubelet starts them.
func podContainers(spec *corev1.PodSpec) iter.Seq[*corev1.Container] {
	return func(yield func(*corev1.Container) bool) {
		for i := range spec.InitContainers {
			if !yield(&spec.InitContainers[i]) {
				return
			}
		}
		for i := range spec.Containers {
			if !yield(&spec.Containers[i]) {
				return
			}
		}
	}
}

// singleNodeAccessMode reports whether a claim can be attached on one node
// only, and the access mode that says so. The bound volume's modes (status)
// are the truth once bound; the requested ones (spec) before. A nil claim is
// unknown, not single-node.
func singleNodeAccessMode(claim *corev1.PersistentVolumeClaim) (corev1.PersistentVolumeAccessMode, bool) {
	if claim == nil {
		return "", false
	}
	modes := claim.Status.AccessModes
	if len(modes) == 0 {
		modes = claim.Spec.AccessModes
	}
	has := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range modes {
		has[m] = true
	}
	switch {
	case has[corev1.ReadWriteMany]:
		return "", false
	case has[corev1.ReadWriteOncePod]:
		return corev1.ReadWriteOncePod, true
	case has[corev1.ReadWriteOnce]:
		return corev1.ReadWriteOnce, true
	}
	return "", false
}

// DataMount is a volume a workload's containers mount that holds data, as
// opposed to configuration: the data mounts are every volume mount and
// volume device but those of configMap, secret, projected and downwardAPI
// volumes (configuration and identity, never data) and of emptyDir volumes
// in memory (scratch space such as /dev/shm). A mount that names no pod
// volume is data kept in a claim: a claim template's, or the one statekeeper
// injects for it.
type DataMount struct {
	// Volume is the volume's name; Index its position in
	// spec.template.spec.volumes, -1 when no pod volume has the name.
	Volume string
	Index  int
	// Paths are where containers mount it, once each in start order (init
	// containers first); a volume device has none.
	Paths []string
	// EmptyDir is true for an emptyDir volume on disk: data that dies with
	// the pod.
	EmptyDir bool
}

// DataMounts lists the workload's data mounts, once per volume, in the
// order containers mount them (init containers first).
func (w Workload) DataMounts() []DataMount {
	if w.Template == nil {
		return nil
	}
	volumes := map[string]int{}
	for i, v := range w.Template.Spec.Volumes {
		if _, seen := volumes[v.Name]; !seen {
			volumes[v.Name] = i
		}
	}
	var out []DataMount
	at := map[string]int{} // volume name → index in out
	add := func(name, path string) {
		index, isVolume := volumes[name]
		if !isVolume {
			index = -1
		}
		if isVolume && !holdsData(&w.Template.Spec.Volumes[index]) {
			return
		}
		i, seen := at[name]
		if !seen {
			i = len(out)
			at[name] = i
			out = append(out, DataMount{Volume: name, Index: index, EmptyDir: isVolume && w.Template.Spec.Volumes[index].EmptyDir != nil})
		}
		if path != "" && !slices.Contains(out[i].Paths, path) {
			out[i].Paths = append(out[i].Paths, path)
		}
	}
	for c := range podContainers(&w.Template.Spec) {
		for _, m := range c.VolumeMounts {
			add(m.Name, m.MountPath)
		}
		for _, d := range c.VolumeDevices {
			add(d.Name, "")
		}
	}
	return out
}

// holdsData reports whether a pod volume can hold data (DataMount).
func holdsData(v *corev1.Volume) bool {
	switch {
	case v.ConfigMap != nil, v.Secret != nil, v.Projected != nil, v.DownwardAPI != nil:
		return false
	case v.EmptyDir != nil:
		return v.EmptyDir.Medium != corev1.StorageMediumMemory
	}
	return true
}

// EphemeralData returns the data mounts of a workload whose data mounts are
// all emptyDir volumes (persistence switched off: a chart's emptyDir
// volume named like the data, which spares its mount a claim); none
// otherwise.
func (w Workload) EphemeralData() []DataMount {
	mounts := w.DataMounts()
	for _, m := range mounts {
		if !m.EmptyDir {
			return nil
		}
	}
	return mounts
}
