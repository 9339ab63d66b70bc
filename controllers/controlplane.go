package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

// ControlPlane connects the reconcilers to the xDS server.
type ControlPlane struct {
	// Proxies reports what the proxies did with each object's configuration.
	Proxies ProxyReporter
	// ProxiesChanged fires when Proxies' reports may have changed; coalesced
	// by the sender, throttled here.
	ProxiesChanged <-chan struct{}
	// MeshChanged is called, from informer goroutines, whenever anything the
	// mesh model is built from changed. It must not block.
	MeshChanged func()
	// Serve, when set, serves xDS until its context ends; it runs on every
	// replica, leader or not.
	Serve func(ctx context.Context) error
}

// statusThrottle is the shortest time between two rounds of status updates
// caused by proxy reports: 1,000 proxies ACKing a push give one round or a
// few, not a thousand.
const statusThrottle = 250 * time.Millisecond

// fanOut turns each (throttled) signal of in into a GenericEvent on every out channel.
func fanOut(ctx context.Context, in <-chan struct{}, outs []chan event.GenericEvent) {
	tick := time.NewTicker(statusThrottle)
	defer tick.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-in:
			if !ok {
				return
			}
			pending = true
		case <-tick.C:
			if !pending {
				continue
			}
			pending = false
			for _, out := range outs {
				select {
				case out <- event.GenericEvent{Object: &corev1.ConfigMap{}}:
				default: // one is already queued; it covers this signal too
				}
			}
		}
	}
}

// watchMesh calls changed whenever an object the mesh model is built from
// changes in a way the model can see: spec changes of the mesh kinds (not
// their status writes), any change of Services, EndpointSlices and Nodes,
// and pod changes of IP, labels or service account.
func watchMesh(ctx context.Context, c cache.Cache, changed func()) error {
	notify := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
		DeleteFunc: func(any) { changed() },
	}
	onSpec := notify
	onSpec.UpdateFunc = func(oldObj, newObj any) {
		o, n := oldObj.(client.Object), newObj.(client.Object)
		if o.GetGeneration() != n.GetGeneration() || !equality.Semantic.DeepEqual(o.GetDeletionTimestamp(), n.GetDeletionTimestamp()) {
			changed()
		}
	}
	onPod := notify
	onPod.UpdateFunc = func(oldObj, newObj any) {
		o, n := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
		if o.Status.PodIP != n.Status.PodIP || o.Spec.ServiceAccountName != n.Spec.ServiceAccountName ||
			!equality.Semantic.DeepEqual(o.Labels, n.Labels) {
			changed()
		}
	}
	handlers := []struct {
		obj     client.Object
		handler toolscache.ResourceEventHandler
	}{
		{&meshv1alpha1.MeshService{}, onSpec},
		{&meshv1alpha1.TrafficPolicy{}, onSpec},
		{&meshv1alpha1.AuthorizationPolicy{}, onSpec},
		{&corev1.Service{}, notify},
		{&discoveryv1.EndpointSlice{}, notify},
		{&corev1.Node{}, notify},
		{&corev1.Pod{}, onPod},
	}
	for _, h := range handlers {
		inf, err := c.GetInformer(ctx, h.obj)
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(h.handler); err != nil {
			return err
		}
	}
	return nil
}

// everyReplica is a Runnable that runs on every replica, leader or not:
// each replica's xDS server serves the proxies connected to it.
type everyReplica manager.RunnableFunc

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }

// controlPlaneRunnable starts the mesh watch and the status fan-out with the
// manager; new mesh-wide settings (settings) count as a mesh change.
func controlPlaneRunnable(mgr ctrl.Manager, cp *ControlPlane, outs []chan event.GenericEvent, settings <-chan event.GenericEvent) manager.Runnable {
	return everyReplica(func(ctx context.Context) error {
		if cp.MeshChanged != nil {
			if err := watchMesh(ctx, mgr.GetCache(), cp.MeshChanged); err != nil {
				return err
			}
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-settings:
						cp.MeshChanged()
					}
				}
			}()
		}
		if cp.ProxiesChanged != nil {
			fanOut(ctx, cp.ProxiesChanged, outs)
		}
		<-ctx.Done()
		return nil
	})
}
