public import Prometheus

/// The node's own Prometheus series. The tracker, flusher and reconciler report through
/// swift-metrics, which `pullsketch serve` points at the same registry.
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let eventsAccepted: Counter
    let eventsDuplicate: Counter
    let eventsIgnored: Counter
    let eventsDropped: Counter
    let eventsClamped: Counter
    let eventsDeferred: Counter
    let eventClaimRoundTrips: Counter
    let eventClaimsWaiting: Gauge
    let eventClaimsLost: Gauge
    let catalogChangesApplied: Counter
    let catalogChangesDeferred: Counter
    let catalogQueue: Gauge
    let trackerMemory: Gauge
    let clockOffset: Gauge

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        let events = MetricNameDescriptor(metricName: "pullsketch_events", unitName: "total", helpText: "Ingested events by outcome")
        eventsAccepted = registry.makeCounter(descriptor: events, labels: [("outcome", "accepted")])
        eventsDuplicate = registry.makeCounter(descriptor: events, labels: [("outcome", "duplicate")])
        eventsIgnored = registry.makeCounter(descriptor: events, labels: [("outcome", "ignored")])
        eventsDropped = registry.makeCounter(descriptor: events, labels: [("outcome", "dropped")])
        eventsClamped = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "pullsketch_event_times_clamped", unitName: "total",
                helpText: "Events whose time lay in the future or more than max_event_delay_ms in the past"
            )
        )
        eventsDeferred = registry.makeCounter(descriptor: events, labels: [("outcome", "deferred")])
        eventClaimRoundTrips = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "pullsketch_event_claim_round_trips", unitName: "total",
                helpText: "Pipelines of event-id claims sent to Redis; claims read in one turn of an event loop, or of concurrent requests, share one"
            )
        )
        eventClaimsWaiting = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "pullsketch_event_claims_waiting", unitName: "requests",
                helpText: "Requests whose event-id claims wait for Redis's answer"
            )
        )
        eventClaimsLost = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "pullsketch_event_claims_lost", unitName: "requests",
                helpText: "Requests whose event-id claims were sent but not answered, waiting to ask Redis again; no claims are sent meanwhile"
            )
        )
        let catalog = MetricNameDescriptor(metricName: "pullsketch_catalog_changes", unitName: "total", helpText: "Catalog changes from push and delete events")
        catalogChangesApplied = registry.makeCounter(descriptor: catalog, labels: [("outcome", "applied")])
        catalogChangesDeferred = registry.makeCounter(descriptor: catalog, labels: [("outcome", "deferred")])
        catalogQueue = registry.makeGauge(
            descriptor: MetricNameDescriptor(metricName: "pullsketch_catalog_queue", unitName: "changes", helpText: "Catalog changes waiting to be written")
        )
        trackerMemory = registry.makeGauge(
            descriptor: MetricNameDescriptor(metricName: "pullsketch_tracker_memory", unitName: "bytes", helpText: "Memory the tracker's window holds")
        )
        clockOffset = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "pullsketch_clock_offset", unitName: "seconds",
                helpText: "Redis's clock minus this host's, as last measured; the node dates events by Redis's clock"
            )
        )
    }
}
