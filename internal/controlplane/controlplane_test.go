package controlplane

import (
	"context"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/internal/xds/translate"
)

// changingReader calls during on its first List: a change that lands
// while the model is being read.
type changingReader struct {
	client.Reader
	lists  int
	during func()
}

func (r *changingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	r.lists++
	if r.lists == 1 && r.during != nil {
		r.during()
	}
	return r.Reader.List(ctx, list, opts...)
}

// Regression (found by make bench-controlplane): a change that arrived
// while the model was loading was forgotten, so the proxies generated next
// got the stale model and no push until some unrelated change.
func TestChangeDuringLoadIsNotLost(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = meshv1alpha1.AddToScheme(scheme)
	r := &changingReader{Reader: fake.NewClientBuilder().WithScheme(scheme).Build()}
	c := New(Options{Reader: r, Settings: meshconfig.NewStore()})
	r.during = c.MeshChanged
	c.MeshChanged()
	first, err := c.current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	loads := r.lists
	second, err := c.current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second == first || r.lists == loads {
		t.Fatal("the change made during the first load did not cause another load")
	}
	third, _ := c.current(context.Background())
	if third != second {
		t.Error("the model was loaded again without a change")
	}
}

func TestSidecarsGetNoAPIListeners(t *testing.T) {
	api := &listenerv3.Listener{Name: "web.shop.svc.cluster.local:9090", ApiListener: &listenerv3.ApiListener{}}
	out := &listenerv3.Listener{Name: translate.VirtualOutbound}
	r := &translate.Resources{
		Listeners: []*listenerv3.Listener{out, api},
		Routes:    []*routev3.RouteConfiguration{{Name: "9090"}, {Name: "web.shop.svc.cluster.local:9090"}},
	}
	got := withoutAPIListeners(r)
	if len(got.Listeners) != 1 || got.Listeners[0] != out {
		t.Errorf("listeners = %v, want only %s", got.Listeners, translate.VirtualOutbound)
	}
	if len(got.Routes) != 1 || got.Routes[0].GetName() != "9090" {
		t.Errorf("routes = %v, want only 9090", got.Routes)
	}
	if len(r.Listeners) != 2 || len(r.Routes) != 2 {
		t.Error("withoutAPIListeners modified its input")
	}
}
