public import PullSketchEvents

/// What the HTTP node needs beyond the tracker: where it listens, who may send events, who may read.
public struct NodeConfiguration: Hashable, Sendable {
    /// Listen address. Default `127.0.0.1:8080`.
    public var host: String
    public var port: Int
    /// The bearer secret registries send with events (`Authorization: Bearer <secret>`). Without
    /// one every ingestion request is refused.
    public var webhookSecret: String?
    /// Who may read statistics.
    public var readAuth: ReadAuth
    /// Largest request body accepted. Default 1 MiB.
    public var maxBodyBytes: Int
    /// Event ids a node remembers for de-duplication when `eventIDHorizon` is zero. Default 100,000.
    public var recentEventIDs: Int
    /// How long an event id stays claimed in Redis, for every node: a redelivery within it counts
    /// once wherever it arrives, and events are deferred (503) while Redis cannot claim them. Zero:
    /// each node de-duplicates by its own memory alone (`recentEventIDs`). Default 15 minutes.
    public var eventIDHorizon: Duration
    /// How far before its arrival an event's time may lie: times are clamped to [received −
    /// this, received], so a registry clock that is behind cannot date a pull into the past and
    /// one that is ahead cannot pin a key's times in the future. Default 10 minutes.
    public var maxEventDelay: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        webhookSecret: String? = nil,
        readAuth: ReadAuth = .tokens([]),
        maxBodyBytes: Int = 1 << 20,
        recentEventIDs: Int = RecentEventIDs.defaultCapacity,
        eventIDHorizon: Duration = .seconds(900),
        maxEventDelay: Duration = .seconds(600)
    ) {
        self.host = host
        self.port = port
        self.webhookSecret = webhookSecret
        self.readAuth = readAuth
        self.maxBodyBytes = maxBodyBytes
        self.recentEventIDs = recentEventIDs
        self.eventIDHorizon = eventIDHorizon
        self.maxEventDelay = maxEventDelay
    }
}

/// How readers of the statistics authenticate.
public enum ReadAuth: Hashable, Sendable {
    /// Bearer tokens, each allowed to read the repositories matching its patterns.
    case tokens([ReaderToken])
    /// Anyone may read everything: for local use only (`read_auth: none`, logged as a warning).
    case none
}

/// A reader's bearer token and the repository patterns it may read (`team/*`, `*`, `team/app`).
public struct ReaderToken: Hashable, Sendable {
    public var token: String
    public var repositories: [String]

    public init(token: String, repositories: [String]) {
        self.token = token
        self.repositories = repositories
    }

    /// Whether `repository` matches one of the patterns; `*` matches any characters, `/` included.
    public func mayRead(_ repository: String) -> Bool {
        repositories.contains { Self.matches(Array($0.utf8)[...], Array(repository.utf8)[...]) }
    }

    private static func matches(_ pattern: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>) -> Bool {
        guard let first = pattern.first else { return name.isEmpty }
        if first == UInt8(ascii: "*") {
            let rest = pattern.dropFirst()
            return name.indices.contains { matches(rest, name[$0...]) } || matches(rest, name[name.endIndex...])
        }
        return name.first == first && matches(pattern.dropFirst(), name.dropFirst())
    }
}
