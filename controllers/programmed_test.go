package controllers

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

func TestProgrammed(t *testing.T) {
	cases := []struct {
		name string
		// gen is the object's generation; inForce whether it is Accepted.
		gen     int64
		inForce bool
		// r is the control plane's report; reported whether there is one.
		r        ProxyReport
		reported bool
		// want is the condition's status and reason; wantMessage a fragment of its message.
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
		// wantSummary is status.proxies.summary, "" when proxies is omitted.
		wantSummary string
	}{
		{name: "no control plane", gen: 1, inForce: true, wantStatus: metav1.ConditionUnknown, wantReason: meshv1alpha1.ReasonPending},
		{name: "no proxies", gen: 1, inForce: true, reported: true, wantStatus: metav1.ConditionTrue, wantReason: ReasonNoProxies, wantSummary: "0/0"},
		{name: "all synced", gen: 3, inForce: true, reported: true, r: ProxyReport{Total: 4, Synced: 4, Generation: 3},
			wantStatus: metav1.ConditionTrue, wantReason: meshv1alpha1.ReasonProgrammed, wantMessage: "all 4 proxies run generation 3", wantSummary: "4/4"},
		{name: "some synced", gen: 3, inForce: true, reported: true, r: ProxyReport{Total: 4, Synced: 1, Generation: 3},
			wantStatus: metav1.ConditionUnknown, wantReason: meshv1alpha1.ReasonPending, wantMessage: "1 of 4 proxies", wantSummary: "1/4"},
		{name: "proxies ACKed an older generation", gen: 3, inForce: true, reported: true, r: ProxyReport{Total: 4, Synced: 4, Generation: 2},
			wantStatus: metav1.ConditionUnknown, wantReason: meshv1alpha1.ReasonPending, wantMessage: "0 of 4 proxies", wantSummary: "0/4"},
		{name: "rejected", gen: 3, inForce: true, reported: true, r: ProxyReport{Total: 4, Synced: 3, Rejected: 1, Generation: 3, Message: "proxy sidecar~a: bad regex"},
			wantStatus: metav1.ConditionFalse, wantReason: ReasonRejected, wantMessage: "1 of 4 proxies rejected their configuration: proxy sidecar~a: bad regex", wantSummary: "3/4"},
		{name: "not in force", gen: 1, reported: true, wantStatus: metav1.ConditionFalse, wantReason: ReasonNotInForce, wantSummary: "0/0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, counts := programmed(tc.gen, tc.inForce, tc.r, tc.reported)
			if c.Type != meshv1alpha1.ConditionProgrammed || c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.ObservedGeneration != tc.gen {
				t.Fatalf("condition = %+v, want status %s reason %s", c, tc.wantStatus, tc.wantReason)
			}
			if !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("message %q lacks %q", c.Message, tc.wantMessage)
			}
			switch {
			case tc.wantSummary == "" && counts != nil:
				t.Errorf("proxies = %+v, want omitted", counts)
			case tc.wantSummary != "" && (counts == nil || counts.Summary != tc.wantSummary || counts.Total != int32(tc.r.Total) || counts.Rejected != int32(tc.r.Rejected)):
				t.Errorf("proxies = %+v, want summary %s", counts, tc.wantSummary)
			}
		})
	}
}

func TestWithProxiesReplacesProgrammed(t *testing.T) {
	conds := []metav1.Condition{
		condition(meshv1alpha1.ConditionAccepted, true, meshv1alpha1.ReasonAccepted, "ok", 2),
		pendingProgrammed(2),
	}
	rep := reporterFunc(func(kind, ns, name string) (ProxyReport, bool) {
		if kind != KindTrafficPolicy || ns != "shop" || name != "tp" {
			t.Errorf("asked about %s %s/%s", kind, ns, name)
		}
		return ProxyReport{Total: 2, Synced: 2, Generation: 2}, true
	})
	out, counts := withProxies(conds, 2, rep, KindTrafficPolicy, "shop", "tp")
	if len(out) != 2 || !meta.IsStatusConditionTrue(out, meshv1alpha1.ConditionProgrammed) || counts.Summary != "2/2" {
		t.Fatalf("conditions %+v, counts %+v", out, counts)
	}
	if len(conds) != 2 || conds[1].Status != metav1.ConditionUnknown {
		t.Errorf("withProxies changed its input: %+v", conds)
	}
}

type reporterFunc func(kind, namespace, name string) (ProxyReport, bool)

func (f reporterFunc) Report(kind, namespace, name string) (ProxyReport, bool) {
	return f(kind, namespace, name)
}
