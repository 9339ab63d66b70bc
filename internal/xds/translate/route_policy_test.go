package translate

import (
	"testing"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

func TestRetryPolicyDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retries   *meshv1alpha1.RetryPolicy // the TrafficPolicy's
		proxyless bool                      // a proxyless route configuration
		want      string                    // retry_on; "" means no retry policy
		hosts     bool                      // the previous_hosts predicate is set
	}{
		{"unset: Istio's default for a sidecar", nil, false, istioRetryOn, true},
		{"unset: none for grpc-go", nil, true, "", false},
		{"attempts 0: none", &meshv1alpha1.RetryPolicy{Attempts: ptr[int32](0)}, false, "", false},
		{"set: the policy's, with previous_hosts", &meshv1alpha1.RetryPolicy{RetryOn: []meshv1alpha1.RetryOn{"5xx"}}, false, "5xx", true},
		{"set, proxyless: the policy's, no predicate", &meshv1alpha1.RetryPolicy{RetryOn: []meshv1alpha1.RetryOn{"unavailable"}}, true, "unavailable", false},
	} {
		rp := retryPolicy(tc.retries, tc.proxyless)
		if got := rp.GetRetryOn(); got != tc.want {
			t.Errorf("%s: retry_on %q, want %q", tc.name, got, tc.want)
			continue
		}
		if rp == nil {
			continue
		}
		preds := rp.GetRetryHostPredicate()
		if hosts := len(preds) == 1 && preds[0].GetName() == previousHostsName &&
			preds[0].GetTypedConfig().GetTypeUrl() == "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" &&
			rp.GetHostSelectionRetryMaxAttempts() == 5; hosts != tc.hosts {
			t.Errorf("%s: previous_hosts %v (%v), want %v", tc.name, hosts, preds, tc.hosts)
		}
		if tc.retries == nil && (rp.GetNumRetries().GetValue() != 2 || len(rp.GetRetriableStatusCodes()) != 1 || rp.GetRetriableStatusCodes()[0] != 503) {
			t.Errorf("%s: %v, want 2 retries of 503", tc.name, rp)
		}
	}
}
