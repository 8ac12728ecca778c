// Package podproc runs statekeeper (and the programs beside it) as local
// processes, for the suites that drive a cluster without a container
// runtime (KWOK) and for the measurements: a process started with its
// arguments, environment and log file, waited for until ready, and stopped
// the way the kubelet stops a container (process.go). For the container of
// a chart's pod it gives the container's arguments with some flags
// replaced, its environment resolved as the kubelet would, and a kubeconfig
// that impersonates the pod's ServiceAccount so the process has exactly the
// chart's RBAC.
package podproc

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Container returns deploy's container called name.
func Container(deploy *appsv1.Deployment, name string) (*corev1.Container, error) {
	for i := range deploy.Spec.Template.Spec.Containers {
		if c := &deploy.Spec.Template.Spec.Containers[i]; c.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("deployment %s has no container %q", deploy.Name, name)
}

// Args returns the container's arguments with the flags in replace set to
// the given values instead; the chart passes flags as --name=value.
func Args(args []string, replace map[string]string) []string {
	var out []string
	for _, arg := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if _, replaced := replace[name]; replaced && strings.HasPrefix(arg, "--") {
			continue
		}
		out = append(out, arg)
	}
	for _, name := range slices.Sorted(maps.Keys(replace)) {
		out = append(out, fmt.Sprintf("--%s=%s", name, replace[name]))
	}
	return out
}

// Env resolves the container's environment as the kubelet would for the
// variables the chart sets: literal values and the pod's namespace.
func Env(c *corev1.Container, namespace string) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env = append(env, e.Name+"="+namespace)
		default:
			return nil, fmt.Errorf("container %s: cannot resolve environment variable %s locally", c.Name, e.Name)
		}
	}
	return env, nil
}

// ImpersonatingKubeconfig writes kubeconfig's current context to path with
// the ServiceAccount namespace/serviceAccount as the impersonated user;
// edit, when not nil, may change the cluster entry further (its server
// address, for a process that reaches the API server another way).
func ImpersonatingKubeconfig(kubeconfig, path, namespace, serviceAccount string, edit func(*clientcmdapi.Cluster)) error {
	if serviceAccount == "" {
		return errors.New("the chart's Deployment names no serviceAccountName")
	}
	raw, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return err
	}
	ctx, ok := raw.Contexts[raw.CurrentContext]
	if !ok {
		return fmt.Errorf("%s: no current context", kubeconfig)
	}
	user, ok := raw.AuthInfos[ctx.AuthInfo]
	if !ok {
		return fmt.Errorf("%s: context %s names no known user", kubeconfig, raw.CurrentContext)
	}
	user.Impersonate = fmt.Sprintf("system:serviceaccount:%s:%s", namespace, serviceAccount)
	if edit != nil {
		cluster, ok := raw.Clusters[ctx.Cluster]
		if !ok {
			return fmt.Errorf("%s: context %s names no known cluster", kubeconfig, raw.CurrentContext)
		}
		edit(cluster)
	}
	return clientcmd.WriteToFile(*raw, path)
}
