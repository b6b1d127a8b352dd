//! Prometheus metrics, served at `/metrics`.

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// `result`: applied, duplicate, rejected.
    pub events: IntCounterVec,
    /// `outcome`: created, replayed, insufficient_stock, key_reused, confirmed, released, fulfilled, expired.
    pub reservations: IntCounterVec,
    pub open_streams: IntGauge,
    /// Positions with negative `available` (a replica: of the partitions it owns).
    pub oversold: IntGauge,
    pub positions: IntGauge,
    pub commit_batch_commands: Histogram,
    pub commit_batch_events: Histogram,
    pub commit_seconds: Histogram,
    pub commit_failures: IntCounterVec,
    /// A partitioned hub: the partitions this replica writes.
    pub partitions_owned: IntGauge,
    /// A partitioned hub: writes sent to the replica that owns their partition, by outcome.
    pub forwarded: IntCounterVec,
    /// Positions answered to edge nodes following their location: about the changes they
    /// missed; a rate far above the location's rate of change means an edge starting over.
    pub edge_positions: IntCounter,
    /// Webhook delivery tries by `result`: delivered, retry (failed, tried again later), failed
    /// (failed for good after the retry period).
    pub webhook_tries: IntCounterVec,
    /// Seconds since the oldest delivery still pending was recorded (0 when none is).
    pub webhook_oldest_pending: IntGauge,
    /// The console's Activity page: what the writer committed, per second (not exported).
    pub activity: crate::activity::Activity,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let events = IntCounterVec::new(Opts::new("shelfcast_events_total", "Ingested events by result"), &["result"]).expect("metric");
        let reservations =
            IntCounterVec::new(Opts::new("shelfcast_reservations_total", "Reservation requests and changes by outcome"), &["outcome"])
                .expect("metric");
        let open_streams = IntGauge::new("shelfcast_open_streams", "Open SSE streams").expect("metric");
        let positions = IntGauge::new("shelfcast_positions", "Positions held in memory").expect("metric");
        let oversold =
            IntGauge::new("shelfcast_oversold_positions", "Positions where holds exceed on-hand (a replica: in the partitions it owns)")
                .expect("metric");
        let commit_batch_commands = Histogram::with_opts(
            HistogramOpts::new("shelfcast_commit_batch_commands", "Requests sharing one group commit")
                .buckets(exponential_buckets(1.0, 2.0, 12).expect("buckets")),
        )
        .expect("metric");
        let commit_batch_events = Histogram::with_opts(
            HistogramOpts::new("shelfcast_commit_batch_events", "Events written by one group commit")
                .buckets(exponential_buckets(1.0, 4.0, 10).expect("buckets")),
        )
        .expect("metric");
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new("shelfcast_commit_seconds", "Time from batch start to durable commit")
                .buckets(exponential_buckets(0.000_05, 2.0, 16).expect("buckets")),
        )
        .expect("metric");
        let commit_failures =
            IntCounterVec::new(Opts::new("shelfcast_commit_failures_total", "Group commits that failed and were rolled back"), &["kind"])
                .expect("metric");
        let partitions_owned = IntGauge::new("shelfcast_partitions_owned", "Partitions whose writes this replica decides").expect("metric");
        let forwarded = IntCounterVec::new(
            Opts::new("shelfcast_forwarded_total", "Write requests sent to the replica owning their partition, by outcome"),
            &["outcome"],
        )
        .expect("metric");
        let edge_positions =
            IntCounter::new("shelfcast_edge_positions_sent_total", "Positions answered to edge nodes following their location")
                .expect("metric");
        let webhook_tries = IntCounterVec::new(Opts::new("shelfcast_webhook_tries_total", "Webhook delivery tries by result"), &["result"])
            .expect("metric");
        let webhook_oldest_pending = IntGauge::new(
            "shelfcast_webhook_oldest_pending_seconds",
            "Age of the oldest webhook delivery not yet delivered (0 when none is pending)",
        )
        .expect("metric");
        for c in [
            Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(webhook_tries.clone()),
            Box::new(webhook_oldest_pending.clone()),
            Box::new(reservations.clone()),
            Box::new(open_streams.clone()),
            Box::new(positions.clone()),
            Box::new(oversold.clone()),
            Box::new(commit_batch_commands.clone()),
            Box::new(commit_batch_events.clone()),
            Box::new(commit_seconds.clone()),
            Box::new(commit_failures.clone()),
            Box::new(partitions_owned.clone()),
            Box::new(forwarded.clone()),
            Box::new(edge_positions.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        // Every series a hub can count is there from the start, at 0 (Prometheus practice:
        // a rate over a series that appears only at its first increment misses that one).
        for result in ["applied", "duplicate", "rejected"] {
            events.with_label_values(&[result]);
        }
        for outcome in
            ["created", "replayed", "insufficient_stock", "key_reused", "unavailable", "released", "confirmed", "fulfilled", "expired"]
        {
            reservations.with_label_values(&[outcome]);
        }
        commit_failures.with_label_values(&["storage"]);
        commit_failures.with_label_values(&["fenced"]);
        for outcome in ["answered", "moved", "unanswered", "failed"] {
            forwarded.with_label_values(&[outcome]);
        }
        for result in ["delivered", "retry", "failed"] {
            webhook_tries.with_label_values(&[result]);
        }
        Self {
            registry,
            events,
            reservations,
            open_streams,
            oversold,
            positions,
            commit_batch_commands,
            commit_batch_events,
            commit_seconds,
            commit_failures,
            partitions_owned,
            forwarded,
            edge_positions,
            webhook_tries,
            webhook_oldest_pending,
            activity: Default::default(),
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}
