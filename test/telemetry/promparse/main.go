// promparse reads Prometheus text exposition on stdin with the parser Prometheus itself
// uses (github.com/prometheus/common/expfmt) and prints the metric families as JSON.
// Invalid exposition exits 1 with the parser's error. Used by test/telemetry.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type bucket struct {
	Le    string `json:"le"`
	Count uint64 `json:"count"`
}

type sample struct {
	Labels  map[string]string `json:"labels"`
	Value   *float64          `json:"value,omitempty"`
	Count   *uint64           `json:"count,omitempty"`
	Sum     *float64          `json:"sum,omitempty"`
	Buckets []bucket          `json:"buckets,omitempty"`
}

type family struct {
	Name    string   `json:"name"`
	Help    string   `json:"help"`
	Type    string   `json:"type"`
	Samples []sample `json:"samples"`
}

func main() {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := []family{}
	for name, f := range families {
		fam := family{Name: name, Help: f.GetHelp(), Type: f.GetType().String()}
		for _, m := range f.GetMetric() {
			s := sample{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v := m.GetCounter().GetValue()
				s.Value = &v
			case dto.MetricType_GAUGE:
				v := m.GetGauge().GetValue()
				s.Value = &v
			case dto.MetricType_UNTYPED:
				v := m.GetUntyped().GetValue()
				s.Value = &v
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				count, sum := h.GetSampleCount(), h.GetSampleSum()
				s.Count, s.Sum = &count, &sum
				for _, b := range h.GetBucket() {
					le := fmt.Sprint(b.GetUpperBound())
					if math.IsInf(b.GetUpperBound(), 1) {
						le = "+Inf"
					}
					s.Buckets = append(s.Buckets, bucket{Le: le, Count: b.GetCumulativeCount()})
				}
			}
			fam.Samples = append(fam.Samples, s)
		}
		out = append(out, fam)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
