package main

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// scaleForPods scales the Deployments so that they ask for o.pods pods in
// all, and waits until the deployment and ReplicaSet controllers have made
// them: the pods are the real controllers' (names, labels, owner
// references), and only their metadata is cached. They are never
// scheduled (see noScheduler). How fast this goes is kube-controller-
// manager's rate limit and CPU: hack/cluster.sh raises the limit to 200
// requests/s; on two idle cores that is about 150 pods/s.
func scaleForPods(ctx context.Context, kube kubernetes.Interface, proc *process, o options, timed func(string, func() error) error) error {
	deployments := kube.AppsV1().Deployments(o.namespace)
	err := timed(fmt.Sprintf("scale %d Deployments to %d pods", o.deployments, o.pods), func() error {
		return createAll(ctx, o.deployments, o.parallel, func(ctx context.Context, i int) error {
			share := o.pods / o.deployments
			if i < o.pods%o.deployments {
				share++
			}
			if share == 0 {
				return nil
			}
			patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, share)
			_, err := deployments.Patch(ctx, deploymentName(i), types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		})
	})
	if err != nil {
		return err
	}
	return timed(fmt.Sprintf("controllers make %d pods", o.pods), func() error {
		return waitFor(ctx, o.timeout, proc, func(ctx context.Context) (bool, error) {
			list, err := deployments.List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			pods, settled := 0, 0
			for _, d := range list.Items {
				pods += int(d.Status.Replicas)
				if d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == *d.Spec.Replicas {
					settled++
				}
			}
			log("%d of %d pods", pods, o.pods)
			return settled == len(list.Items), nil
		})
	})
}

func deploymentName(i int) string { return fmt.Sprintf("web-%05d", i) }
