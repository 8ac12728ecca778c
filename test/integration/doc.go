// Package integration tests statekeeper against a real kube-apiserver (envtest)
// with the webhook configurations rendered from the Helm chart, so what is tested
// is what is shipped: rules, selectors, failure policies and match conditions.
//
// Every test talks to the API server the way kubectl does (create, update,
// server-side apply, replace, the /scale subresource, --dry-run=server) and
// checks what the API server stored or answered. Run it through `make test`,
// which builds the binaries and exports KUBEBUILDER_ASSETS and HELM.
package integration
