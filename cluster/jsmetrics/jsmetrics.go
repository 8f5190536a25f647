// Package jsmetrics exports JetStream's streams and durable consumers as
// Prometheus series, read on scrape: messages and bytes per stream (and
// its byte limit), and per consumer the messages not yet delivered, those
// delivered and awaiting an ack, those redelivered, and the age of the
// oldest message the consumer has not acknowledged.
//
// The numbers come from the JetStream API, which the stream's or
// consumer's leader answers: every node of a cluster reports the same
// values, so dashboards and alerts aggregate them with max by (stream,
// consumer), never sum. Ephemeral consumers (KV watchers, ordered
// consumers) come and go with random names and are left out.
package jsmetrics

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector over one JetStream context.
type Collector struct {
	js      jetstream.JetStream
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	errors  atomic.Int64

	streamMsgs, streamBytes, streamMaxBytes       *prometheus.Desc
	pending, ackPending, redelivered, oldestUnack *prometheus.Desc
	collectErrors                                 *prometheus.Desc
}

// New returns a collector asking js, each scrape bounded by timeout
// (a scrape must not hang on a JetStream without quorum).
func New(js jetstream.JetStream, timeout time.Duration, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.Default()
	}
	s, c := []string{"stream"}, []string{"stream", "consumer"}
	return &Collector{
		js: js, timeout: timeout, now: time.Now, log: log,
		streamMsgs:     prometheus.NewDesc("spa_jetstream_stream_messages", "Messages stored in the stream (the leader's count: aggregate with max).", s, nil),
		streamBytes:    prometheus.NewDesc("spa_jetstream_stream_bytes", "Bytes stored in the stream (aggregate with max).", s, nil),
		streamMaxBytes: prometheus.NewDesc("spa_jetstream_stream_max_bytes", "The stream's byte limit (-1: none).", s, nil),
		pending:        prometheus.NewDesc("spa_jetstream_consumer_pending_messages", "Messages of the stream the durable consumer has not yet delivered (its lag; aggregate with max).", c, nil),
		ackPending:     prometheus.NewDesc("spa_jetstream_consumer_ack_pending_messages", "Messages delivered to the durable consumer and not yet acknowledged.", c, nil),
		redelivered:    prometheus.NewDesc("spa_jetstream_consumer_redelivered_messages", "Messages awaiting an ack that were delivered more than once.", c, nil),
		oldestUnack:    prometheus.NewDesc("spa_jetstream_consumer_oldest_unacked_seconds", "Age of the oldest message the durable consumer has not acknowledged (0: none).", c, nil),
		collectErrors:  prometheus.NewDesc("spa_jetstream_collect_errors_total", "Scrapes whose JetStream listing failed or timed out (the series above are then partial).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.streamMsgs, c.streamBytes, c.streamMaxBytes, c.pending, c.ackPending, c.redelivered, c.oldestUnack, c.collectErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.collect(ctx, ch); err != nil {
		c.errors.Add(1)
		c.log.Warn("jetstream metrics incomplete", "err", err)
	}
	ch <- prometheus.MustNewConstMetric(c.collectErrors, prometheus.CounterValue, float64(c.errors.Load()))
}

func (c *Collector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	streams := c.js.ListStreams(ctx)
	var infos []*jetstream.StreamInfo
	for si := range streams.Info() {
		infos = append(infos, si)
	}
	errs := []error{streams.Err()}
	for _, si := range infos {
		name := si.Config.Name
		ch <- prometheus.MustNewConstMetric(c.streamMsgs, prometheus.GaugeValue, float64(si.State.Msgs), name)
		ch <- prometheus.MustNewConstMetric(c.streamBytes, prometheus.GaugeValue, float64(si.State.Bytes), name)
		ch <- prometheus.MustNewConstMetric(c.streamMaxBytes, prometheus.GaugeValue, float64(si.Config.MaxBytes), name)
		if si.State.Consumers == 0 {
			continue
		}
		errs = append(errs, c.consumers(ctx, ch, name))
	}
	return errors.Join(errs...)
}

func (c *Collector) consumers(ctx context.Context, ch chan<- prometheus.Metric, streamName string) error {
	stream, err := c.js.Stream(ctx, streamName)
	if err != nil {
		return err
	}
	list := stream.ListConsumers(ctx)
	var infos []*jetstream.ConsumerInfo
	for ci := range list.Info() {
		if ci.Config.Durable != "" {
			infos = append(infos, ci)
		}
	}
	errs := []error{list.Err()}
	for _, ci := range infos {
		labels := []string{streamName, ci.Name}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ci.NumPending), labels...)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(ci.NumAckPending), labels...)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(ci.NumRedelivered), labels...)
		age, err := c.oldestUnacked(ctx, stream, ci)
		errs = append(errs, err)
		ch <- prometheus.MustNewConstMetric(c.oldestUnack, prometheus.GaugeValue, age.Seconds(), labels...)
	}
	return errors.Join(errs...)
}

// oldestUnacked is how long the first message past the consumer's ack
// floor (that its filter selects) has been in the stream: delivered and
// unacknowledged, or not delivered yet. Nothing pending: 0.
func (c *Collector) oldestUnacked(ctx context.Context, stream jetstream.Stream, ci *jetstream.ConsumerInfo) (time.Duration, error) {
	if ci.NumAckPending == 0 && ci.NumPending == 0 {
		return 0, nil
	}
	var opts []jetstream.GetMsgOpt
	if f := ci.Config.FilterSubject; f != "" {
		opts = append(opts, jetstream.WithGetMsgSubject(f))
	} else if len(ci.Config.FilterSubjects) == 1 {
		opts = append(opts, jetstream.WithGetMsgSubject(ci.Config.FilterSubjects[0]))
	} else {
		opts = append(opts, jetstream.WithGetMsgSubject(">"))
	}
	msg, err := stream.GetMsg(ctx, ci.AckFloor.Stream+1, opts...)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil // acked or removed since the consumer's info
	}
	if err != nil {
		return 0, err
	}
	return max(c.now().Sub(msg.Time), 0), nil
}
