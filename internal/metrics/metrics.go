// Package metrics defines the Prometheus metrics of the guard (SPEC §4) on a
// registry of their own, so tests and several guards in one process never
// share counters. A nil *Metrics is valid and records nothing.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the guard's collectors.
type Metrics struct {
	reg         *prometheus.Registry
	deliveries  *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	latency     prometheus.Histogram
	ackLatency  prometheus.Histogram
	apiCalls    *prometheus.CounterVec
	rateLimit   prometheus.Gauge
	rateKnown   sync.Once // rateLimit is registered once GitHub has told it
	queueDepth  prometheus.GaugeFunc
	queueOldest prometheus.GaugeFunc
}

// QueueStats reports the inbox depth and the age of its oldest pending delivery.
type QueueStats func() (depth int, oldest time.Duration)

// New registers the guard's metrics; queue is sampled at scrape time.
func New(queue QueueStats) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_webhook_deliveries_total",
			Help: "Webhook deliveries by event and result (accepted, duplicate, ignored, unauthorized, malformed, too_large, busy, error).",
		}, []string{"event", "result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_decisions_total",
			Help: "Decisions by outcome (allow, escalate, block, error).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "guard_processing_seconds",
			Help:    "Time from a delivery's acknowledgement to the end of its processing.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "guard_webhook_ack_seconds",
			Help:    "Time to acknowledge a webhook delivery (signature check and durable insert).",
			Buckets: ackBuckets,
		}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_github_api_calls_total",
			Help: "GitHub API calls by HTTP status; cached=true are 304 answers, which cost no rate limit.",
		}, []string{"status", "cached"}),
		rateLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "guard_github_rate_limit_remaining",
			Help: "X-RateLimit-Remaining of the last GitHub answer (absent until GitHub has answered with one).",
		}),
	}
	m.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "guard_queue_depth",
		Help: "Deliveries acknowledged but not yet processed.",
	}, func() float64 {
		if queue == nil {
			return 0
		}
		d, _ := queue()
		return float64(d)
	})
	m.queueOldest = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "guard_queue_oldest_seconds",
		Help: "Age of the oldest delivery not yet processed.",
	}, func() float64 {
		if queue == nil {
			return 0
		}
		_, age := queue()
		return age.Seconds()
	})
	reg.MustRegister(m.deliveries, m.decisions, m.latency, m.ackLatency, m.apiCalls,
		m.queueDepth, m.queueOldest,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Delivery counts a webhook delivery.
func (m *Metrics) Delivery(event, result string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(event, result).Inc()
}

// Ack observes the time taken to acknowledge a delivery.
func (m *Metrics) Ack(d time.Duration) {
	if m == nil {
		return
	}
	m.ackLatency.Observe(d.Seconds())
}

// Decision counts a decision.
func (m *Metrics) Decision(outcome string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(outcome).Inc()
}

// Processed observes the acknowledgement-to-done latency of a delivery.
func (m *Metrics) Processed(d time.Duration) {
	if m == nil {
		return
	}
	m.latency.Observe(d.Seconds())
}

// APICall counts a GitHub API call and records the rate limit left (-1: unknown).
func (m *Metrics) APICall(status int, cached bool, remaining int) {
	if m == nil {
		return
	}
	c := "false"
	if cached {
		c = "true"
	}
	m.apiCalls.WithLabelValues(statusText(status), c).Inc()
	if remaining >= 0 {
		m.rateLimit.Set(float64(remaining))
		// Not shown before: a 0 for "not known yet" (no answer, or only
		// network errors) would read as an exhausted rate limit.
		m.rateKnown.Do(func() { m.reg.MustRegister(m.rateLimit) })
	}
}

func statusText(s int) string {
	if s == 0 {
		return "network_error"
	}
	return strconv.Itoa(s)
}

// ackBuckets bound guard_webhook_ack_seconds. They include the target of
// an acknowledgement's p99, 15 ms, so that the share of acknowledgements
// within it reads off one bucket (an alert on the target needs no
// interpolation), and are finer around it than doubling buckets (8, 16,
// 32 ms) would be.
var ackBuckets = []float64{
	0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
	0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}
