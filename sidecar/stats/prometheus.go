package stats

import (
	"bufio"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// contentType is Prometheus' text exposition format, version 0.0.4.
const contentType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

// Handler serves the metrics port: PrometheusPath and MetricsPath in
// Prometheus' text format (gzipped when the scraper accepts it, as
// Prometheus does), 404 elsewhere.
func (s *Stats) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+PrometheusPath, http.HandlerFunc(s.ServePrometheus))
	mux.Handle("GET "+MetricsPath, http.HandlerFunc(s.ServePrometheus))
	return mux
}

var gzipWriters sync.Pool // *gzip.Writer

// ServePrometheus answers a scrape: every series in Prometheus' text
// format, gzipped when the request accepts gzip.
func (s *Stats) ServePrometheus(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		gz, _ := gzipWriters.Get().(*gzip.Writer)
		if gz == nil {
			gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		} else {
			gz.Reset(w)
		}
		defer func() {
			_ = gz.Close()
			gz.Reset(nil)
			gzipWriters.Put(gz)
		}()
		out = gz
	}
	if r.Method == http.MethodHead {
		return
	}
	_ = s.WritePrometheus(out) // the status is sent; the scraper sees a cut body
}

func acceptsGzip(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if strings.TrimSpace(coding) != "gzip" {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		return !ok || strings.TrimSpace(q) != "0"
	}
	return false
}

// WritePrometheus writes every series in Prometheus' text exposition
// format (version 0.0.4): families in name order, each with its HELP and
// TYPE lines.
func (s *Stats) WritePrometheus(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	var b []byte
	for _, f := range s.gather() {
		b = append(b[:0], "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendHelp(b, f.help)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, kindNames[f.kind]...)
		b = append(b, '\n')
		for _, sr := range f.series {
			switch f.kind {
			case histogram:
				b = appendHistogramLines(b, f.name, sr)
			case summary:
				b = appendSummaryLines(b, f.name, sr)
			default:
				b = appendSample(b, f.name, "", sr.labels, "", "", sr.value)
			}
			if len(b) > 16<<10 {
				if _, err := bw.Write(b); err != nil {
					return err
				}
				b = b[:0]
			}
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func appendHistogramLines(b []byte, name string, sr series) []byte {
	d := sr.dist
	for i, bound := range d.bounds {
		b = appendSample(b, name, "_bucket", sr.labels, "le", formatFloat(bound), float64(d.counts[i]))
	}
	b = appendSample(b, name, "_bucket", sr.labels, "le", "+Inf", float64(d.count))
	b = appendSample(b, name, "_sum", sr.labels, "", "", d.sum)
	return appendSample(b, name, "_count", sr.labels, "", "", float64(d.count))
}

func appendSummaryLines(b []byte, name string, sr series) []byte {
	d := sr.dist
	for i, q := range d.bounds {
		b = appendSample(b, name, "", sr.labels, "quantile", formatFloat(q), d.values[i])
	}
	b = appendSample(b, name, "_sum", sr.labels, "", "", d.sum)
	return appendSample(b, name, "_count", sr.labels, "", "", float64(d.count))
}

// appendSample appends one sample line: name and suffix, the labels and,
// when extraName is set, one more label after them (le, quantile).
func appendSample(b []byte, name, suffix string, labels []label, extraName, extraValue string, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labels) > 0 || extraName != "" {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, l.name, l.value)
		}
		if extraName != "" {
			if len(labels) > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, extraName, extraValue)
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendPromValue(b, v)
	return append(b, '\n')
}

// appendLabel appends name="value", the value escaped as the format
// requires: backslash, double quote and line feed.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendHelp appends a HELP text, escaping backslash and line feed.
func appendHelp(b []byte, help string) []byte {
	for i := 0; i < len(help); i++ {
		switch c := help[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendPromValue writes whole numbers as integers (exact for counters up
// to 2^53) and others as Go's shortest float, as Prometheus parses them.
func appendPromValue(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// formatFloat is a bucket bound or a quantile as a label value, as
// Prometheus' Go client writes it (le="0.0001", le="30").
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
