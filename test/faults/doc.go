// Package faults is statekeeper's fault suite: the chart's release with its
// replicas on a local cluster, routed to the way a real cluster routes, under
// a steady load of managed writes, through restarts, an upgrade, certificate
// re-issue, killed replicas, a killed leader, a replica that hangs
// (SIGSTOP), control-plane restarts and a burst of creates. Each scenario counts the requests sent and the failed
// admissions (any refusal that is not a rule's own denial) and asserts
// counts and outcomes; the recovery times go to a printed table, never into
// an assertion.
//
// The tests carry the build tag faults, need root (network namespaces) and
// the local cluster of hack/cluster.sh; run them with
//
//	make faults
//
// # How a real cluster is played here
//
// KWOK runs no containers, so the suite plays the kubelet and the
// Deployment controller for statekeeper's pods (fleet_test.go):
//
//   - The chart is installed as shipped, in its secret TLS mode (a
//     development CA, certs/dev-ca.sh); its webhook configurations keep their
//     `service` clientConfig and call the chart's Service. The cluster's API
//     server runs with --enable-aggregator-routing, so it dials one of the
//     Service's endpoints itself, choosing when it dials a connection, as it
//     does with kube-proxy's conntrack in a real cluster.
//   - Each replica is a test host of its own: a network namespace with its
//     own address from 198.18.0.0/15 (hack/testhost.sh), and its own UTS
//     namespace whose hostname is the pod's name (so the Lease names the
//     pod). It runs bin/statekeeper with the arguments and environment of
//     the chart's container, only --cert-dir and --kubeconfig replaced; the
//     kubeconfig impersonates the chart's ServiceAccount.
//   - The supervisor mounts the chart's TLS Secret into each replica's
//     certificate directory the way the kubelet does (a timestamped
//     directory behind an atomically swapped ..data symlink).
//   - It runs the chart's probes as the kubelet does (period, timeout,
//     failure threshold, initial delay) and writes the replicas into an
//     EndpointSlice of the chart's Service as the endpoint-slice controller
//     would: ready while the readiness probe passes, serving and
//     terminating (not ready) once the pod is deleted. A replica failing its
//     liveness probe is restarted: SIGTERM, SIGKILL after the probe's grace
//     period (else the pod's).
//   - It rolls the replicas when the Deployment's pod template changes,
//     with the chart's strategy (maxSurge 1, maxUnavailable 0); stops a
//     replica with SIGTERM and SIGKILL after the pod's
//     terminationGracePeriodSeconds; and restarts a replica whose process
//     died, as restartPolicy Always does.
//
// What differs from a real cluster:
//
//   - The chart's own pods never run: they are pinned by a nodeSelector to
//     a node that does not exist, so KWOK does not fake them Running with
//     addresses nothing listens on; the supervisor's EndpointSlice (its own
//     managed-by label, beside the controller's empty one) is what routes.
//     The supervisor rolls the replicas when told to (after `kubectl rollout
//     restart` or `helm upgrade`), not by watching the ReplicaSets.
//   - On SIGTERM the supervisor signals the process first and writes the
//     terminating endpoint right after; in a cluster both follow the pod's
//     deletion in either order, so this is the harder order for the drain.
//   - A process that dies is marked not ready as soon as it exits, and
//     restarted at once; the kubelet notices within its PLEG period (about
//     a second) and backs off on repeated crashes. In the leader scenario the
//     killed replica is held down until the Lease has moved, so that the
//     other replica is the one that takes over.
//   - A re-issued certificate is mounted as soon as the Secret is written;
//     the kubelet syncs Secret volumes within about a minute.
//   - Failures of a SIGKILLed replica are counted as in flight when the
//     request started before its endpoint was written not ready plus one
//     second (the time the API server's informer may take to see it).
//   - There is one kube-apiserver and one etcd; a real control plane is
//     usually highly available, so their restarts here are full outages.
package faults
