package main

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// createPods gives each Deployment with replicas its ReplicaSet and pods,
// as the deployment and ReplicaSet controllers would have made them (see
// deployment, replicaSet and pod), and waits until the ReplicaSet
// controller has counted them: it then has nothing left to do, since each
// ReplicaSet has the pods it asks for, and the paused Deployments take their
// ReplicaSet as their own.
func createPods(ctx context.Context, kube kubernetes.Interface, proc *process, o options, timed func(string, func() error) error) error {
	list, err := kube.AppsV1().Deployments(o.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var owners []*appsv1.Deployment
	for i := range list.Items {
		if *list.Items[i].Spec.Replicas > 0 {
			owners = append(owners, &list.Items[i])
		}
	}
	replicaSets := kube.AppsV1().ReplicaSets(o.namespace)
	created := make([]*appsv1.ReplicaSet, len(owners))
	err = timed(fmt.Sprintf("create %d ReplicaSets", len(owners)), func() error {
		return createAll(ctx, len(owners), o.parallel, func(ctx context.Context, i int) (err error) {
			created[i], err = replicaSets.Create(ctx, replicaSet(owners[i]), metav1.CreateOptions{})
			return err
		})
	})
	if err != nil {
		return err
	}
	// Pod i belongs to the ReplicaSet whose replicas it fills next.
	var ownerOf []*appsv1.ReplicaSet
	for _, rs := range created {
		for range *rs.Spec.Replicas {
			ownerOf = append(ownerOf, rs)
		}
	}
	pods := kube.CoreV1().Pods(o.namespace)
	err = timed(fmt.Sprintf("create %d pods", len(ownerOf)), func() error {
		return createAll(ctx, len(ownerOf), o.parallel, func(ctx context.Context, i int) error {
			_, err := pods.Create(ctx, pod(ownerOf[i]), metav1.CreateOptions{})
			return err
		})
	})
	if err != nil {
		return err
	}
	return timed("replicaset controller counts them", func() error {
		return waitFor(ctx, o.timeout, proc, func(ctx context.Context) (bool, error) {
			list, err := replicaSets.List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return countTrue(list.Items, func(rs appsv1.ReplicaSet) bool {
				return rs.Status.ObservedGeneration == rs.Generation && rs.Status.Replicas == *rs.Spec.Replicas
			}) == len(created), nil
		})
	})
}
