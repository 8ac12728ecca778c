// Package e2e holds statekeeper's end-to-end tests: they install the Helm chart
// as shipped into the cluster KUBECONFIG names and drive it with kubectl, the
// way a platform team and its users would.
//
// The tests carry the build tag e2e and need a cluster; run them with
//
//	make e2e        # the local control plane with KWOK nodes (no containers)
//	make e2e-kind   # a kind cluster with the chart's own image (needs Docker)
//
// On the local cluster no container runs, so the suite runs the statekeeper
// binary as a local process with the flags of the chart's Deployment,
// impersonating the chart's ServiceAccount (which proves its RBAC suffices),
// and points the installed webhook configurations at it, as cert-manager's CA
// injector would fill their CA bundle. On kind the chart's Deployment serves
// and cert-manager injects the CA; the tests are the same.
package e2e
