// Package e2e holds statekeeper's end-to-end tests: they install the Helm chart
// as shipped into the cluster KUBECONFIG names and drive it with kubectl, the
// way a platform team and its users would.
//
// The tests carry the build tag e2e and need a cluster; run them with
//
//	make e2e        # the local control plane with KWOK nodes (no containers)
//	make e2e-kind   # a kind cluster with the chart's own image (needs Docker)
//
// On the local cluster no container runs, so the suite runs two local
// processes in place of pods: cert-manager's issuance and CA injection
// (hack/certmanager), which issue the chart's Certificates and fill both
// webhook configurations' CA bundles, and the statekeeper binary with the
// flags of the chart's Deployment, impersonating the chart's ServiceAccount
// (which proves its RBAC suffices), serving the issued Secret from a
// directory kept as the kubelet keeps a secret volume. The chart is installed
// with webhook.url naming that process. On kind the chart's Deployment serves
// and cert-manager runs from its release manifest; the tests are the same.
package e2e
