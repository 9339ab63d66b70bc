package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// Cache indexes that let a change to one object find the objects that refer to it.
const (
	// indexServiceName indexes MeshServices by the name of their Service.
	indexServiceName = "meshservice.serviceName"
	// indexTargetName indexes TrafficPolicies and AuthorizationPolicies by their target MeshService's name.
	indexTargetName = "policy.targetName"
	// indexBackendKey indexes TrafficPolicies by "namespace/name" of every MeshService their backends and failover name.
	indexBackendKey = "trafficpolicy.backendKey"
)

// addIndexes registers the cache indexes.
func addIndexes(ctx context.Context, idx client.FieldIndexer) error {
	if err := idx.IndexField(ctx, &meshv1alpha1.MeshService{}, indexServiceName, func(o client.Object) []string {
		return []string{o.(*meshv1alpha1.MeshService).ServiceName()}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &meshv1alpha1.TrafficPolicy{}, indexTargetName, func(o client.Object) []string {
		return []string{string(o.(*meshv1alpha1.TrafficPolicy).Spec.TargetRef.Name)}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &meshv1alpha1.TrafficPolicy{}, indexBackendKey, func(o client.Object) []string {
		var keys []string
		for _, ref := range backendRefs(o.(*meshv1alpha1.TrafficPolicy)) {
			keys = append(keys, ref.String())
		}
		return keys
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &meshv1alpha1.AuthorizationPolicy{}, indexTargetName, func(o client.Object) []string {
		if ref := o.(*meshv1alpha1.AuthorizationPolicy).Spec.TargetRef; ref != nil {
			return []string{string(ref.Name)}
		}
		return nil
	})
}

// listRequests lists objects from the cache into list and returns a
// reconcile request for each: the body of every map function.
func listRequests(ctx context.Context, c client.Reader, list client.ObjectList, opts ...client.ListOption) []reconcile.Request {
	list = list.DeepCopyObject().(client.ObjectList) // map functions may run concurrently
	if err := c.List(ctx, list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "List objects to map a change", "list", fmt.Sprintf("%T", list))
		return nil
	}
	var reqs []reconcile.Request
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
		return nil
	})
	return reqs
}
