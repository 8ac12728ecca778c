package policy

import (
	"fmt"
	"strconv"
)

// A quorum can span workloads: a replica set whose arbiter runs in a
// StatefulSet of its own votes as one quorum of data members and arbiter.
// statekeeper.io/quorum-external-votes declares, on the workload that
// carries statekeeper.io/quorum, how many voters of its quorum live outside
// it; the quorum rule and the disruption budget count them.

// QuorumVotes are the voters of a quorum workload's quorum.
type QuorumVotes struct {
	// Replicas are the workload's own instances; External the voters
	// declared outside it (statekeeper.io/quorum-external-votes, 0 when
	// absent or unusable: the invalid-annotation rule denies the latter).
	Replicas, External int32
}

// Total is every vote of the quorum. int64: both counts may be near MaxInt32.
func (v QuorumVotes) Total() int64 { return int64(v.Replicas) + int64(v.External) }

// Split reports whether the count lets a quorum split into halves: an even
// number of votes. No replicas is a workload at rest, never a split.
func (v QuorumVotes) Split() bool { return v.Replicas > 0 && v.Total() >= 2 && v.Total()%2 == 0 }

// QuorumVotesAt are the votes of w's quorum at that replica count.
func (w Workload) QuorumVotesAt(replicas int32) QuorumVotes {
	external, _ := w.quorumExternalVotes()
	return QuorumVotes{Replicas: replicas, External: external}
}

// quorumExternalVotes parses statekeeper.io/quorum-external-votes: a
// non-negative decimal integer that fits an int32; absent is 0.
func (w Workload) quorumExternalVotes() (int32, error) {
	v, ok := w.Annotations[AnnotationQuorumExternalVotes]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a non-negative integer: %q", v)
	}
	return int32(n), nil
}

// declaresExternalVotes reports whether w carries the annotation at all.
func (w Workload) declaresExternalVotes() bool {
	_, ok := w.Annotations[AnnotationQuorumExternalVotes]
	return ok
}

// quorumMinAvailable is how many of a quorum workload's own instances its
// disruption budget keeps: as many of its instances may be down as the
// whole quorum tolerates (a minority of its votes), counting the external
// voters as up. A budget covers the pods of one workload only; counting the
// external voters as possibly down would make the budget of two data members
// and an arbiter keep both data members (minAvailable 2), which allows no
// eviction and blocks every node drain. Without external votes this is the
// majority of the replicas, ⌊n/2⌋+1.
func quorumMinAvailable(v QuorumVotes) int32 {
	majority := v.Total()/2 + 1
	return int32(max(0, majority-int64(v.External)))
}
