package stats

import (
	"bufio"
	"io"
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// WriteText writes what g gathers for people, as Envoy's admin /stats does:
// one `name{label="value",...}: value` line per series, sorted. A histogram
// or summary is one line of its count, sum and percentiles (a histogram's
// estimated from its buckets, as histogram_quantile does). keep, if not
// nil, chooses series by the text before the colon. Gathering errors are
// returned after whatever could be gathered is written.
func WriteText(w io.Writer, g prometheus.Gatherer, keep func(series string) bool) error {
	families, gatherErr := g.Gather()
	bw := bufio.NewWriter(w)
	var line []byte
	for _, f := range families {
		for _, m := range f.GetMetric() {
			line = appendSeries(line[:0], f.GetName(), m.GetLabel())
			if keep != nil && !keep(string(line)) {
				continue
			}
			line = append(line, ": "...)
			switch {
			case m.Counter != nil:
				line = appendValue(line, m.GetCounter().GetValue())
			case m.Gauge != nil:
				line = appendValue(line, m.GetGauge().GetValue())
			case m.Untyped != nil:
				line = appendValue(line, m.GetUntyped().GetValue())
			case m.Histogram != nil:
				line = appendHistogram(line, m.GetHistogram())
			case m.Summary != nil:
				line = appendSummary(line, m.GetSummary())
			}
			line = append(line, '\n')
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return gatherErr
}

func appendSeries(b []byte, name string, labels []*dto.LabelPair) []byte {
	b = append(b, name...)
	if len(labels) == 0 {
		return b
	}
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.GetName()...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, l.GetValue())
	}
	return append(b, '}')
}

// appendValue writes whole numbers without an exponent (a byte counter
// reads 1500000, not 1.5e+06) and others to 6 significant digits.
func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', 6, 64)
}

func appendHistogram(b []byte, h *dto.Histogram) []byte {
	b = appendCountSum(b, h.GetSampleCount(), h.GetSampleSum())
	if h.GetSampleCount() == 0 {
		return b
	}
	for _, q := range []struct {
		label string
		q     float64
	}{{"p50", .5}, {"p90", .9}, {"p99", .99}} {
		b = append(b, ' ')
		b = append(b, q.label...)
		b = append(b, '=')
		b = appendValue(b, bucketQuantile(q.q, h))
	}
	return b
}

func appendSummary(b []byte, s *dto.Summary) []byte {
	b = appendCountSum(b, s.GetSampleCount(), s.GetSampleSum())
	for _, q := range s.GetQuantile() {
		b = append(b, " p"...)
		b = strconv.AppendFloat(b, math.Round(q.GetQuantile()*1e6)/1e4, 'f', -1, 64)
		b = append(b, '=')
		b = appendValue(b, q.GetValue())
	}
	return b
}

func appendCountSum(b []byte, count uint64, sum float64) []byte {
	b = append(b, "count="...)
	b = strconv.AppendUint(b, count, 10)
	b = append(b, " sum="...)
	return appendValue(b, sum)
}

// bucketQuantile estimates the q-quantile of a histogram by linear
// interpolation within the bucket it falls in, from 0 for the first
// bucket; one that falls above the last finite bound is that bound.
func bucketQuantile(q float64, h *dto.Histogram) float64 {
	rank := q * float64(h.GetSampleCount())
	lower, below := 0.0, 0.0
	for _, bk := range h.GetBucket() {
		upper, cum := bk.GetUpperBound(), float64(bk.GetCumulativeCount())
		if math.IsInf(upper, 1) {
			break
		}
		if cum >= rank {
			if cum == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(cum-below)
		}
		lower, below = upper, cum
	}
	return lower
}
