package stats

import (
	"bufio"
	"io"
	"math"
	"strconv"
)

// WriteText writes what s holds for people, as Envoy's admin /stats does:
// one `name{label="value",...}: value` line per series, sorted. A histogram
// or summary is one line of its count, sum and percentiles (a histogram's
// estimated from its buckets, as histogram_quantile does). keep, if not
// nil, chooses series by the text before the colon.
func WriteText(w io.Writer, s *Stats, keep func(series string) bool) error {
	bw := bufio.NewWriter(w)
	var line []byte
	for _, f := range s.gather() {
		for _, sr := range f.series {
			line = appendSeries(line[:0], f.name, sr.labels)
			if keep != nil && !keep(string(line)) {
				continue
			}
			line = append(line, ": "...)
			switch f.kind {
			case histogram:
				line = appendHistogram(line, sr.dist)
			case summary:
				line = appendSummary(line, sr.dist)
			default:
				line = appendValue(line, sr.value)
			}
			line = append(line, '\n')
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func appendSeries(b []byte, name string, labels []label) []byte {
	b = append(b, name...)
	if len(labels) == 0 {
		return b
	}
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.name...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, l.value)
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

func appendHistogram(b []byte, h *distribution) []byte {
	b = appendCountSum(b, h.count, h.sum)
	if h.count == 0 {
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

func appendSummary(b []byte, s *distribution) []byte {
	b = appendCountSum(b, s.count, s.sum)
	for i, q := range s.bounds {
		b = append(b, " p"...)
		b = strconv.AppendFloat(b, math.Round(q*1e6)/1e4, 'f', -1, 64)
		b = append(b, '=')
		b = appendValue(b, s.values[i])
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
func bucketQuantile(q float64, h *distribution) float64 {
	rank := q * float64(h.count)
	lower, below := 0.0, 0.0
	for i, upper := range h.bounds {
		cum := float64(h.counts[i])
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
