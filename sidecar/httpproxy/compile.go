package httpproxy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/go-logr/logr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/skeinmesh/skein/sidecar/listener"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/stats"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// RouterType is the router filter's typed_config type: the terminal HTTP
// filter, which Compile knows by itself.
const RouterType = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

// Envoy's defaults for the connection manager's timeouts.
const (
	// DefaultStreamIdleTimeout is stream_idle_timeout when unset.
	DefaultStreamIdleTimeout = 5 * time.Minute
	// DefaultIdleTimeout is common_http_protocol_options.idle_timeout when
	// unset: a downstream connection with no request for this long closes.
	DefaultIdleTimeout = time.Hour
)

// Routes gives the route tables that RDS delivered, by route
// configuration name. It is read once per request (per stream), so a new
// table applies to the next request while requests in flight keep the
// route they matched. Table returns nil while the name is unknown: the
// request is answered 404 no_route.
type Routes interface {
	Table(name string) *router.Table
}

// Clusters gives the current clusters by name; *upstream.Manager is one.
// Get returns nil for an unknown cluster (503 cluster_not_found).
type Clusters interface {
	Get(name string) *upstream.Cluster
}

// Stats gives a cluster's metrics handle; *stats.Stats is one. It is asked
// once per request; a nil result counts nothing.
type Stats interface {
	Cluster(name string) *stats.Cluster
}

var (
	_ Clusters = (*upstream.Manager)(nil)
	_ Stats    = (*stats.Stats)(nil)
)

// Deps are what a connection manager works with besides its own config.
type Deps struct {
	// Routes gives RDS route tables; required for an HCM with rds, unused
	// with an inline route_config.
	Routes Routes
	// Clusters gives the clusters requests go to; required.
	Clusters Clusters
	// Stats counts requests per cluster; nil counts nothing.
	Stats Stats
	// Filters maps HTTP filters' typed_config type URLs to their
	// factories, the extension point for fault injection, RBAC and the
	// like. The router (RouterType) is built in and must not be listed.
	// nil: no HTTP filter but the router.
	Filters map[string]HTTPFilterFactory
	// Log receives every local reply that reports a failure (with its
	// reason, request and cluster) at V(1); the zero Logger discards them.
	Log logr.Logger
}

// Codec is the downstream protocol a connection manager accepts.
type Codec uint8

const (
	// CodecAuto serves HTTP/2 to connections that open with its preface
	// and HTTP/1.1 to the others (codec_type AUTO, the default).
	CodecAuto Codec = iota
	// CodecHTTP1 serves HTTP/1.x only.
	CodecHTTP1
	// CodecHTTP2 serves HTTP/2 (prior knowledge) only.
	CodecHTTP2
)

// Handler is a compiled HttpConnectionManager: immutable (its exported
// fields are for reading), shared by every connection its listener
// accepted under this config. It is the terminal
// network filter of its chain (listener.ConnHandler).
type Handler struct {
	// Name is stat_prefix.
	Name string
	// Codec is codec_type.
	Codec Codec
	// RouteConfigName is rds.route_config_name; "" with an inline table.
	RouteConfigName string
	// StreamIdleTimeout bounds the time a request waits for a byte from
	// either side; 0 means none. Unset is 5 minutes.
	StreamIdleTimeout time.Duration
	// RequestTimeout bounds the time to receive the whole request from
	// downstream; 0 (the default) means none.
	RequestTimeout time.Duration
	// IdleTimeout closes a downstream connection with no request in
	// progress for that long; 0 means never. Unset is 1 hour.
	IdleTimeout time.Duration
	// MaxRequestHeadersKB bounds a request head; 0 means 60 KiB.
	MaxRequestHeadersKB int
	// MaxHeaders bounds the header fields of a request; 0 means 100.
	MaxHeaders int
	// UseRemoteAddress: the downstream peer is the client, its address is
	// appended to x-forwarded-for and x-forwarded-proto is overwritten.
	// false (the default): both are the previous hop's to set, and kept.
	UseRemoteAddress bool
	// GenerateRequestID adds x-request-id (a random UUID) to requests
	// without one; true unless generate_request_id is false.
	GenerateRequestID bool
	// Upgrades are the Upgrade protocols allowed (lower case, e.g.
	// "websocket"); an Upgrade request for another is answered 403
	// upgrade_failed.
	Upgrades []string

	table0  *router.Table // inline route_config; nil with RDS
	filters []Filter      // HTTP filters before the router, in order
	deps    Deps
}

var _ listener.ConnHandler = (*Handler)(nil)

// Compile validates an HttpConnectionManager and builds its Handler.
// Errors name the field: `http_filters[0]: envoy.filters.http.fault is not
// supported yet`. Fields that do not change how a request is handled
// (stat_prefix, access_log, tracing, server_name) are accepted and ignored;
// every other field this package does not implement is refused.
func Compile(hcm *hcmv3.HttpConnectionManager, deps Deps) (*Handler, error) {
	if deps.Clusters == nil {
		return nil, fmt.Errorf("httpproxy: Deps.Clusters is required")
	}
	if err := onlyFields(hcm, "",
		"codec_type", "stat_prefix", "rds", "route_config", "http_filters", "tracing", "access_log",
		"common_http_protocol_options", "server_name", "stream_idle_timeout", "request_timeout",
		"max_request_headers_kb", "use_remote_address", "xff_num_trusted_hops", "skip_xff_append",
		"generate_request_id", "forward_client_cert_details", "upgrade_configs", "normalize_path",
		"merge_slashes", "path_with_escaped_slashes_action", "http_protocol_options",
		"access_log_options", "preserve_external_request_id", "drain_timeout", "delayed_close_timeout",
		"stream_error_on_invalid_http_message"); err != nil {
		return nil, err
	}
	h := &Handler{
		Name:              hcm.GetStatPrefix(),
		StreamIdleTimeout: DefaultStreamIdleTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		UseRemoteAddress:  hcm.GetUseRemoteAddress().GetValue(),
		GenerateRequestID: hcm.GenerateRequestId == nil || hcm.GetGenerateRequestId().GetValue(),
		deps:              deps,
	}
	switch hcm.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO:
		h.Codec = CodecAuto
	case hcmv3.HttpConnectionManager_HTTP1:
		h.Codec = CodecHTTP1
	case hcmv3.HttpConnectionManager_HTTP2:
		h.Codec = CodecHTTP2
	default:
		return nil, fmt.Errorf("codec_type: %s is not supported (AUTO, HTTP1 or HTTP2)", hcm.GetCodecType())
	}
	switch rs := hcm.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_Rds:
		if rs.Rds.GetRouteConfigName() == "" {
			return nil, fmt.Errorf("rds.route_config_name: required")
		}
		if cs := rs.Rds.GetConfigSource(); cs != nil && cs.GetAds() == nil {
			return nil, fmt.Errorf("rds.config_source: only ads is supported")
		}
		if deps.Routes == nil {
			return nil, fmt.Errorf("rds: the proxy has no RDS route tables (Deps.Routes)")
		}
		h.RouteConfigName = rs.Rds.GetRouteConfigName()
	case *hcmv3.HttpConnectionManager_RouteConfig:
		t, err := router.Compile(rs.RouteConfig)
		if err != nil {
			return nil, fmt.Errorf("route_config: %w", err)
		}
		h.table0 = t
	case nil:
		return nil, fmt.Errorf("route_specifier: one of rds and route_config is required")
	default:
		return nil, fmt.Errorf("scoped_routes: not supported")
	}
	if err := h.compileTimeouts(hcm); err != nil {
		return nil, err
	}
	if x := hcm.GetXffNumTrustedHops(); x != 0 {
		return nil, fmt.Errorf("xff_num_trusted_hops: not supported (the proxy does not pick the client address from x-forwarded-for)")
	}
	if hcm.GetSkipXffAppend() {
		h.UseRemoteAddress = false // nothing else reads it
	}
	switch hcm.GetForwardClientCertDetails() {
	case hcmv3.HttpConnectionManager_SANITIZE:
	default:
		return nil, fmt.Errorf("forward_client_cert_details: only SANITIZE is supported until mTLS")
	}
	if hcm.GetNormalizePath().GetValue() {
		return nil, fmt.Errorf("normalize_path: not supported")
	}
	if hcm.GetMergeSlashes() {
		return nil, fmt.Errorf("merge_slashes: not supported")
	}
	switch hcm.GetPathWithEscapedSlashesAction() {
	case hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcmv3.HttpConnectionManager_KEEP_UNCHANGED:
	default:
		return nil, fmt.Errorf("path_with_escaped_slashes_action: only KEEP_UNCHANGED is supported")
	}
	if o := hcm.GetHttpProtocolOptions(); o != nil {
		if err := onlyFields(o, "http_protocol_options"); err != nil {
			return nil, err
		}
	}
	for i, u := range hcm.GetUpgradeConfigs() {
		p := fmt.Sprintf("upgrade_configs[%d]", i)
		if err := onlyFields(u, p, "upgrade_type", "enabled"); err != nil {
			return nil, err
		}
		t := strings.ToLower(u.GetUpgradeType())
		if t == "" || t == "connect" {
			return nil, fmt.Errorf("%s.upgrade_type: %q is not supported", p, u.GetUpgradeType())
		}
		if u.Enabled != nil && !u.GetEnabled().GetValue() {
			continue
		}
		h.Upgrades = append(h.Upgrades, t)
	}
	if err := h.compileFilters(hcm.GetHttpFilters()); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Handler) compileTimeouts(hcm *hcmv3.HttpConnectionManager) error {
	var err error
	dur := func(path string, d *durationpb.Duration, dst *time.Duration) {
		if d == nil || err != nil {
			return
		}
		if e := d.CheckValid(); e != nil || d.AsDuration() < 0 {
			err = fmt.Errorf("%s: invalid duration", path)
			return
		}
		*dst = d.AsDuration()
	}
	dur("stream_idle_timeout", hcm.GetStreamIdleTimeout(), &h.StreamIdleTimeout)
	dur("request_timeout", hcm.GetRequestTimeout(), &h.RequestTimeout)
	if o := hcm.GetCommonHttpProtocolOptions(); o != nil {
		if e := onlyFields(o, "common_http_protocol_options", "idle_timeout", "max_headers_count", "headers_with_underscores_action"); e != nil {
			return e
		}
		dur("common_http_protocol_options.idle_timeout", o.GetIdleTimeout(), &h.IdleTimeout)
		if n := o.GetMaxHeadersCount(); n != nil {
			if n.GetValue() < 1 {
				return fmt.Errorf("common_http_protocol_options.max_headers_count: must be at least 1")
			}
			h.MaxHeaders = int(n.GetValue())
		}
		if o.GetHeadersWithUnderscoresAction() != 0 {
			return fmt.Errorf("common_http_protocol_options.headers_with_underscores_action: only ALLOW is supported")
		}
	}
	if kb := hcm.GetMaxRequestHeadersKb(); kb != nil {
		if kb.GetValue() < 1 || kb.GetValue() > 8192 {
			return fmt.Errorf("max_request_headers_kb: must be 1 to 8192")
		}
		h.MaxRequestHeadersKB = int(kb.GetValue())
	}
	return err
}

// compileFilters builds the HTTP filter chain: registered filters in
// order, then the router, which must be last.
func (h *Handler) compileFilters(fs []*hcmv3.HttpFilter) error {
	if len(fs) == 0 {
		return fmt.Errorf("http_filters: empty; the router filter must be last")
	}
	for i, f := range fs {
		p := fmt.Sprintf("http_filters[%d]", i)
		if err := onlyFields(f, p, "name", "typed_config", "is_optional", "disabled"); err != nil {
			return err
		}
		tc := f.GetTypedConfig()
		if tc == nil {
			return fmt.Errorf("%s.typed_config: required (filters are chosen by type)", p)
		}
		last := i == len(fs)-1
		if tc.GetTypeUrl() == RouterType {
			if !last {
				return fmt.Errorf("%s: the router must be the last HTTP filter", p)
			}
			r := &routerv3.Router{}
			if err := tc.UnmarshalTo(r); err != nil {
				return fmt.Errorf("%s.typed_config: %w", p, err)
			}
			if err := onlyFields(r, p+".typed_config", "dynamic_stats", "start_child_span", "suppress_envoy_headers", "upstream_log", "upstream_log_options"); err != nil {
				return err
			}
			return nil
		}
		if last {
			return fmt.Errorf("%s: the last HTTP filter must be the router (%s), not %s", p, RouterType, tc.GetTypeUrl())
		}
		if f.GetDisabled() {
			continue // enabled per route only: routes cannot yet
		}
		factory := h.deps.Filters[tc.GetTypeUrl()]
		if factory == nil {
			if f.GetIsOptional() {
				continue // Envoy skips an unknown optional filter
			}
			return fmt.Errorf("%s: %s is not supported yet (%s)", p, filterName(f), tc.GetTypeUrl())
		}
		flt, err := factory(f.GetName(), tc)
		if err != nil {
			return fmt.Errorf("%s.typed_config: %w", p, err)
		}
		h.filters = append(h.filters, flt)
	}
	return nil // unreachable: the last filter returns above
}

// filterName is the filter's name, or the name its type implies.
func filterName(f *hcmv3.HttpFilter) string {
	if f.GetName() != "" {
		return f.GetName()
	}
	return f.GetTypedConfig().GetTypeUrl()
}

// NewFactory returns the listener's factory for HttpConnectionManager
// network filters (listener.HTTPConnectionManagerType): each compiles
// into a Handler working with deps.
func NewFactory(deps Deps) listener.FilterFactory {
	return func(f *listenerv3.Filter) (listener.Filter, error) {
		tc := f.GetTypedConfig()
		if tc == nil || tc.GetTypeUrl() != listener.HTTPConnectionManagerType {
			return listener.Filter{}, fmt.Errorf("typed_config: want %s", listener.HTTPConnectionManagerType)
		}
		hcm := &hcmv3.HttpConnectionManager{}
		if err := tc.UnmarshalTo(hcm); err != nil {
			return listener.Filter{}, fmt.Errorf("typed_config: %w", err)
		}
		h, err := Compile(hcm, deps)
		if err != nil {
			return listener.Filter{}, err
		}
		return listener.Filter{Terminal: h}, nil
	}
}

// onlyFields refuses any field of m set but not allowed.
func onlyFields(m proto.Message, path string, allowed ...string) error {
	var err error
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name := string(fd.Name())
		if fd.ContainingOneof() != nil && slices.Contains(allowed, string(fd.ContainingOneof().Name())) {
			return true
		}
		if slices.Contains(allowed, name) {
			return true
		}
		if path != "" {
			name = path + "." + name
		}
		err = fmt.Errorf("%s: not supported", name)
		return false
	})
	return err
}

// upgradeAllowed reports whether an Upgrade for proto (its header value)
// is configured.
func (h *Handler) upgradeAllowed(proto []byte) bool {
	for _, u := range h.Upgrades {
		if equalFold(u, proto) {
			return true
		}
	}
	return false
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := range len(b) {
		c, d := s[i], b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
