package mesh

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Load lists what the model is built from with c, normally the operator's
// informer cache, and builds it, with the default cluster domain. Services,
// EndpointSlices and Pods are listed only in the namespaces that have a
// MeshService; Nodes, MeshServices and both kinds of policy cluster-wide.
func Load(ctx context.Context, c client.Reader, settings meshconfig.Settings) (*Model, error) {
	in := Inputs{Settings: settings}

	var meshServices meshv1alpha1.MeshServiceList
	if err := c.List(ctx, &meshServices); err != nil {
		return nil, fmt.Errorf("list MeshServices: %w", err)
	}
	in.MeshServices = meshServices.Items
	var namespaces []string
	for i := range in.MeshServices {
		namespaces = append(namespaces, in.MeshServices[i].Namespace)
	}
	slices.Sort(namespaces)
	for _, ns := range slices.Compact(namespaces) {
		var (
			services corev1.ServiceList
			eps      discoveryv1.EndpointSliceList
			pods     corev1.PodList
		)
		if err := c.List(ctx, &services, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list Services in namespace %s: %w", ns, err)
		}
		if err := c.List(ctx, &eps, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list EndpointSlices in namespace %s: %w", ns, err)
		}
		if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list Pods in namespace %s: %w", ns, err)
		}
		in.Services = append(in.Services, services.Items...)
		in.EndpointSlices = append(in.EndpointSlices, eps.Items...)
		in.Pods = append(in.Pods, pods.Items...)
	}

	var (
		nodes   corev1.NodeList
		traffic meshv1alpha1.TrafficPolicyList
		authz   meshv1alpha1.AuthorizationPolicyList
	)
	if err := c.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list Nodes: %w", err)
	}
	if err := c.List(ctx, &traffic); err != nil {
		return nil, fmt.Errorf("list TrafficPolicies: %w", err)
	}
	if err := c.List(ctx, &authz); err != nil {
		return nil, fmt.Errorf("list AuthorizationPolicies: %w", err)
	}
	in.Nodes, in.TrafficPolicies, in.AuthorizationPolicies = nodes.Items, traffic.Items, authz.Items
	return Build(in), nil
}
