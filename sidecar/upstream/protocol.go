package upstream

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// httpOptionsKey is the typed_extension_protocol_options key of the
// upstream HTTP options.
const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// httpOptions returns the cluster's HttpProtocolOptions, or nil when the
// extension is absent or malformed (compileProtocol reports that).
func httpOptions(pb *clusterv3.Cluster) *httpv3.HttpProtocolOptions {
	a := pb.GetTypedExtensionProtocolOptions()[httpOptionsKey]
	if a == nil {
		return nil
	}
	o := &httpv3.HttpProtocolOptions{}
	if err := a.UnmarshalTo(o); err != nil {
		return nil
	}
	return o
}

// compileProtocol decides the upstream protocol and reads the connection
// options that go with it: HTTP/2 for explicit http2 (or the deprecated
// http2_protocol_options), the request's own protocol for
// use_downstream_protocol_config (or the deprecated protocol_selection
// USE_DOWNSTREAM_PROTOCOL), HTTP/1.1 otherwise.
func (c *Cluster) compileProtocol(pb *clusterv3.Cluster) error {
	for key := range pb.GetTypedExtensionProtocolOptions() {
		if key != httpOptionsKey {
			return fmt.Errorf("typed_extension_protocol_options[%q]: not supported", key)
		}
	}
	if a := pb.GetTypedExtensionProtocolOptions()[httpOptionsKey]; a != nil {
		path := fmt.Sprintf("typed_extension_protocol_options[%q]", httpOptionsKey)
		o := &httpv3.HttpProtocolOptions{}
		if err := a.UnmarshalTo(o); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return c.compileHTTPOptions(o, pb, path)
	}
	// No HttpProtocolOptions: the deprecated top-level fields.
	if err := checkHTTP1(pb.GetHttpProtocolOptions(), "http_protocol_options"); err != nil {
		return err
	}
	if h2 := pb.GetHttp2ProtocolOptions(); h2 != nil {
		c.protocol = HTTP2
		if err := c.compileHTTP2(h2, "http2_protocol_options"); err != nil {
			return err
		}
	}
	if pb.GetProtocolSelection() == clusterv3.Cluster_USE_DOWNSTREAM_PROTOCOL {
		c.protocol = Downstream
	}
	if err := c.compileCommon(pb.GetCommonHttpProtocolOptions(), "common_http_protocol_options"); err != nil {
		return err
	}
	return c.compileMaxRequests(pb.GetMaxRequestsPerConnection().GetValue(), "max_requests_per_connection")
}

func (c *Cluster) compileHTTPOptions(o *httpv3.HttpProtocolOptions, pb *clusterv3.Cluster, path string) error {
	if err := onlyFields(o, path, "common_http_protocol_options", "upstream_http_protocol_options",
		"explicit_http_config", "use_downstream_protocol_config"); err != nil {
		if o.GetAutoConfig() != nil {
			return fmt.Errorf("%s.auto_config: needs ALPN over TLS; TLS upstreams arrive with mTLS", path)
		}
		return err
	}
	for _, f := range []string{"common_http_protocol_options", "http_protocol_options", "http2_protocol_options", "protocol_selection", "max_requests_per_connection"} {
		if pb.ProtoReflect().Has(pb.ProtoReflect().Descriptor().Fields().ByName(protoName(f))) {
			return fmt.Errorf("%s: deprecated field set beside %s", f, path)
		}
	}
	if err := c.compileVersion(o, path); err != nil {
		return err
	}
	return c.compileCommon(o.GetCommonHttpProtocolOptions(), path+".common_http_protocol_options")
}

// compileVersion reads explicit_http_config or use_downstream_protocol_config.
func (c *Cluster) compileVersion(o *httpv3.HttpProtocolOptions, path string) error {
	switch {
	case o.GetExplicitHttpConfig() != nil:
		e := o.GetExplicitHttpConfig()
		p := path + ".explicit_http_config"
		switch {
		case e.GetHttp2ProtocolOptions() != nil:
			c.protocol = HTTP2
			return c.compileHTTP2(e.GetHttp2ProtocolOptions(), p+".http2_protocol_options")
		case e.GetHttp3ProtocolOptions() != nil:
			return fmt.Errorf("%s.http3_protocol_options: HTTP/3 upstreams are not supported", p)
		}
		return checkHTTP1(e.GetHttpProtocolOptions(), p+".http_protocol_options")
	case o.GetUseDownstreamProtocolConfig() != nil:
		d := o.GetUseDownstreamProtocolConfig()
		p := path + ".use_downstream_protocol_config"
		c.protocol = Downstream
		if d.GetHttp3ProtocolOptions() != nil {
			return fmt.Errorf("%s.http3_protocol_options: HTTP/3 upstreams are not supported", p)
		}
		if err := checkHTTP1(d.GetHttpProtocolOptions(), p+".http_protocol_options"); err != nil {
			return err
		}
		if h2 := d.GetHttp2ProtocolOptions(); h2 != nil {
			return c.compileHTTP2(h2, p+".http2_protocol_options")
		}
		return nil
	}
	return errors.New(path + ": upstream_protocol_options: one of explicit_http_config or use_downstream_protocol_config is required")
}

func protoName(s string) protoreflect.Name { return protoreflect.Name(s) }

// compileCommon reads idle_timeout and max_requests_per_connection.
func (c *Cluster) compileCommon(o *corev3.HttpProtocolOptions, path string) error {
	if o == nil {
		return nil
	}
	if err := onlyFields(o, path, "idle_timeout", "max_requests_per_connection"); err != nil {
		return err
	}
	if d := o.GetIdleTimeout(); d != nil {
		c.idleTimeout = d.AsDuration() // 0 disables it, as in Envoy
		if c.idleTimeout < 0 {
			return fmt.Errorf("%s.idle_timeout: negative", path)
		}
	}
	return c.compileMaxRequests(o.GetMaxRequestsPerConnection().GetValue(), path+".max_requests_per_connection")
}

func (c *Cluster) compileMaxRequests(n uint32, path string) error {
	if n == 0 {
		return nil
	}
	if c.protocol != HTTP11 {
		return fmt.Errorf("%s: only HTTP/1.1 upstreams honour it so far", path)
	}
	c.maxRequests = n
	return nil
}

// checkHTTP1 accepts HTTP/1.1 options only when empty: each of their
// fields changes how messages are written or accepted.
func checkHTTP1(o *corev3.Http1ProtocolOptions, path string) error {
	if o == nil {
		return nil
	}
	return onlyFields(o, path)
}

// compileHTTP2 reads max_concurrent_streams and connection_keepalive; the
// window and frame limits are tuning this proxy leaves to
// golang.org/x/net/http2's defaults.
func (c *Cluster) compileHTTP2(o *corev3.Http2ProtocolOptions, path string) error {
	if err := onlyFields(o, path, "max_concurrent_streams", "connection_keepalive",
		"initial_stream_window_size", "initial_connection_window_size", "hpack_table_size"); err != nil {
		return err
	}
	if ka := o.GetConnectionKeepalive(); ka != nil {
		if err := onlyFields(ka, path+".connection_keepalive", "interval", "timeout"); err != nil {
			return err
		}
	}
	c.maxStreams = o.GetMaxConcurrentStreams().GetValue()
	return nil
}

var _ proto.Message = (*httpv3.HttpProtocolOptions)(nil)
