package main

import (
	"context"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// createPods creates o.pods pods spread over the Deployments, shaped as the
// ReplicaSet controller makes them: named "<deployment>-<template hash>-
// <suffix>", labelled with the Deployment's selector and a
// pod-template-hash, the Deployment's pod template as spec. The tool makes
// them itself rather than scaling the Deployments: on two shared cores the
// deployment and ReplicaSet controllers took far more than the lock's 20
// minutes for 9,000 Deployments and 50,000 pods.
//
// What statekeeper caches of them is what it caches of a ReplicaSet's pod:
// the pod cache keeps metadata only, and of the owner references only a
// StatefulSet controller (lookup's stripPodMetadata), so the ReplicaSet
// reference these pods lack would be dropped anyway. Their
// pod-template-hash matches no ReplicaSet, so no controller adopts or
// deletes them; they name a scheduler that does not exist (noScheduler), so
// they stay Pending.
func createPods(ctx context.Context, kube kubernetes.Interface, o options, timed func(string, func() error) error) error {
	pods := kube.CoreV1().Pods(o.namespace)
	return timed(fmt.Sprintf("create %d pods of the %d Deployments", o.pods, o.deployments), func() error {
		return createAll(ctx, o.pods, o.parallel, func(ctx context.Context, i int) error {
			_, err := pods.Create(ctx, replicaSetPod(o, i%o.deployments, i/o.deployments), metav1.CreateOptions{})
			return err
		})
	})
}

// replicaSetPod is pod number n of Deployment number d.
func replicaSetPod(o options, d, n int) *corev1.Pod {
	namespace := o.namespace
	owner := deployment(namespace, deploymentName(d), o.image(d))
	hash := templateHash(owner.Name)
	labels := map[string]string{"pod-template-hash": hash}
	for k, v := range owner.Spec.Template.Labels {
		labels[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: fmt.Sprintf("%s-%s-%05d", owner.Name, hash, n),
			GenerateName: owner.Name + "-" + hash + "-", Labels: labels,
		},
		Spec: owner.Spec.Template.Spec,
	}
}

// templateHash is a 10-character stand-in for the ReplicaSet controller's
// pod-template-hash (which is 10 characters too); it matches no
// ReplicaSet's.
func templateHash(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("x%09x", h.Sum32())[:10]
}

func deploymentName(i int) string { return fmt.Sprintf("web-%05d", i) }
