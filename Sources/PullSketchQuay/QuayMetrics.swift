import Metrics

/// The Quay endpoint's swift-metrics figures; the process chooses the backend (Prometheus in the
/// node). Made once per endpoint or intake: a metric is looked up by name when made.
struct QuayMetrics: Sendable {
    let connections = Counter(label: "pullsketch_quay_connections_total")
    let protocolErrors = Counter(label: "pullsketch_quay_protocol_errors_total")
    /// Pulls handed to the tracker.
    let pulls = Counter(label: "pullsketch_quay_pulls_total")
    /// Pulls waiting for their repository's name.
    let waiting = Gauge(label: "pullsketch_quay_pulls_waiting_for_names")

    private let refusals = Dictionary(uniqueKeysWithValues: QuayInputError.allCases.map {
        ($0, Counter(label: "pullsketch_quay_commands_refused_total", dimensions: [("reason", $0.rawValue)]))
    })
    private let drops = Dictionary(uniqueKeysWithValues: QuayDropReason.allCases.map {
        ($0, Counter(label: "pullsketch_quay_pulls_dropped_total", dimensions: [("reason", $0.rawValue)]))
    })

    func refused(_ reason: QuayInputError) {
        refusals[reason]!.increment()
    }

    func dropped(_ reason: QuayDropReason, count: Int = 1) {
        drops[reason]!.increment(by: count)
    }
}

/// Why a pull that was taken never reached the tracker.
enum QuayDropReason: String, CaseIterable {
    /// Quay's database has no repository with the pull's id.
    case unknownRepository = "unknown_repository"
    /// The repository's name in Quay is not a valid repository name here.
    case invalidRepositoryName = "invalid_repository_name"
    /// Too many pulls waiting for names (Quay's database unreachable for long).
    case queueFull = "queue_full"
}
