package meshconfig

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		// data is the ConfigMap's data.
		data map[string]string
		// want is the settings expected when badKeys is empty.
		want func(s *Settings)
		// badKeys are the keys the error must name, in order.
		badKeys []string
	}{
		{name: "empty gives defaults", data: nil, want: func(*Settings) {}},
		{
			name: "every key set",
			data: map[string]string{
				KeyProxyImage: "reg.local/proxy:v2", KeyInitImage: "reg.local/init:v2",
				KeyTrustDomain: "example.org", KeyOutboundTrafficPolicy: "REGISTRY_ONLY",
				KeyDefaultAuthorization: "DENY", KeyAccessLogging: "true",
				KeyTracingEndpoint: "otel-collector.observability:4317", KeyWebhookFailurePolicy: "Ignore",
				KeyRestartUnmeshedPods: "true",
			},
			want: func(s *Settings) {
				s.ProxyImage, s.InitImage, s.TrustDomain = "reg.local/proxy:v2", "reg.local/init:v2", "example.org"
				s.OutboundTrafficPolicy, s.DefaultAuthorization = OutboundRegistryOnly, AuthorizationDeny
				s.AccessLogging, s.TracingEndpoint = true, "otel-collector.observability:4317"
				s.WebhookFailurePolicy = FailurePolicyIgnore
				s.RestartUnmeshedPods = true
			},
		},
		{name: "surrounding space is trimmed", data: map[string]string{KeyTrustDomain: " mesh.local\n"}, want: func(s *Settings) { s.TrustDomain = "mesh.local" }},
		{name: "empty tracing endpoint turns tracing off", data: map[string]string{KeyTracingEndpoint: ""}, want: func(*Settings) {}},
		{name: "bad trust domain", data: map[string]string{KeyTrustDomain: "Not A Domain"}, badKeys: []string{KeyTrustDomain}},
		{name: "bad outbound policy", data: map[string]string{KeyOutboundTrafficPolicy: "allow"}, badKeys: []string{KeyOutboundTrafficPolicy}},
		{name: "bad default authorization", data: map[string]string{KeyDefaultAuthorization: "MAYBE"}, badKeys: []string{KeyDefaultAuthorization}},
		{name: "bad boolean", data: map[string]string{KeyAccessLogging: "yes please"}, badKeys: []string{KeyAccessLogging}},
		{name: "tracing endpoint without port", data: map[string]string{KeyTracingEndpoint: "collector"}, badKeys: []string{KeyTracingEndpoint}},
		{name: "tracing endpoint port out of range", data: map[string]string{KeyTracingEndpoint: "collector:70000"}, badKeys: []string{KeyTracingEndpoint}},
		{name: "image with a space", data: map[string]string{KeyProxyImage: "skein proxy"}, badKeys: []string{KeyProxyImage}},
		{name: "empty image", data: map[string]string{KeyInitImage: ""}, badKeys: []string{KeyInitImage}},
		{name: "restart of unmeshed pods off", data: map[string]string{KeyRestartUnmeshedPods: "false"}, want: func(*Settings) {}},
		{name: "bad restart switch", data: map[string]string{KeyRestartUnmeshedPods: "always"}, badKeys: []string{KeyRestartUnmeshedPods}},
		{name: "bad failure policy", data: map[string]string{KeyWebhookFailurePolicy: "fail"}, badKeys: []string{KeyWebhookFailurePolicy}},
		{name: "unknown key, a typo", data: map[string]string{"trustDomian": "x.local"}, badKeys: []string{"trustDomian"}},
		{
			name:    "every bad key is named, good ones too are not applied",
			data:    map[string]string{KeyTrustDomain: "ok.local", KeyAccessLogging: "?", KeyDefaultAuthorization: "?"},
			badKeys: []string{KeyAccessLogging, KeyDefaultAuthorization},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.data)
			if len(tc.badKeys) > 0 {
				if err == nil {
					t.Fatalf("Parse accepted %v", tc.data)
				}
				if keys := BadKeys(err); !reflect.DeepEqual(keys, tc.badKeys) {
					t.Fatalf("error names keys %v, want %v (error: %v)", keys, tc.badKeys, err)
				}
				for _, k := range tc.badKeys {
					if !strings.Contains(err.Error(), `"`+k+`"`) {
						t.Errorf("error %q does not quote key %q", err, k)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Defaults()
			tc.want(&want)
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestStoreKeepsLastGood(t *testing.T) {
	s := NewStore()
	if s.Current() != Defaults() {
		t.Fatalf("new store holds %+v, want defaults", s.Current())
	}
	next := Defaults()
	next.TrustDomain = "example.org"
	if !s.Set(next) {
		t.Error("Set of new settings reported no change")
	}
	if s.Set(next) {
		t.Error("Set of the same settings reported a change")
	}
	if got := s.Current().SPIFFEID("shop", "web"); got != "spiffe://example.org/ns/shop/sa/web" {
		t.Errorf("SPIFFEID = %q", got)
	}
}
