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
    /// The longest a database read may run before it is cancelled and answered 503. Default 5 s.
    public var statementTimeout: Duration
    /// How long a connection may stay idle, or a request take to arrive, before it is closed.
    /// Default 30 s.
    public var idleTimeout: Duration
    /// Requests in flight beyond which the node answers 503 at once. Default 256.
    public var maxConcurrentRequests: Int
    /// The bearer token `/metrics` requires; nil: `/metrics` is public.
    public var metricsToken: String?
    /// Catalog changes waiting to be written beyond which envelopes with push or delete events are
    /// deferred (503). Default 100,000.
    public var catalogQueueCapacity: Int
    /// The header a TLS-terminating proxy sets to the client's scheme (`X-Forwarded-Proto`); when
    /// it says `https`, the sign-in cookie is `Secure`. Nil: no proxy is trusted to say so.
    public var forwardedProtoHeader: String?
    /// How long a failed sign-in counts against its address (ten refuse the next for the rest of
    /// it). Default one minute.
    public var signInWindow: Duration
    /// Clients whose pulls are not counted, by user agent (history imports read it too). Default none.
    public var ignoredClients: IgnoredClients

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        webhookSecret: String? = nil,
        readAuth: ReadAuth = .tokens([]),
        maxBodyBytes: Int = 1 << 20,
        recentEventIDs: Int = RecentEventIDs.defaultCapacity,
        eventIDHorizon: Duration = .seconds(900),
        maxEventDelay: Duration = .seconds(600),
        statementTimeout: Duration = .seconds(5),
        idleTimeout: Duration = .seconds(30),
        maxConcurrentRequests: Int = 256,
        metricsToken: String? = nil,
        catalogQueueCapacity: Int = 100_000,
        forwardedProtoHeader: String? = nil,
        signInWindow: Duration = .seconds(60),
        ignoredClients: IgnoredClients = .none
    ) {
        self.host = host
        self.port = port
        self.webhookSecret = webhookSecret
        self.readAuth = readAuth
        self.maxBodyBytes = maxBodyBytes
        self.recentEventIDs = recentEventIDs
        self.eventIDHorizon = eventIDHorizon
        self.maxEventDelay = maxEventDelay
        self.statementTimeout = statementTimeout
        self.idleTimeout = idleTimeout
        self.maxConcurrentRequests = maxConcurrentRequests
        self.metricsToken = metricsToken
        self.catalogQueueCapacity = catalogQueueCapacity
        self.forwardedProtoHeader = forwardedProtoHeader
        self.signInWindow = signInWindow
        self.ignoredClients = ignoredClients
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
        repositories.contains { Self.matches($0, repository) }
    }

    /// Glob matching with `*` alone, without backtracking: the text between stars must appear in
    /// order, the first piece at the start and the last at the end, and taking each piece at its
    /// first place after the previous one is never wrong. Time: at most pattern × name bytes.
    static func matches(_ pattern: String, _ name: String) -> Bool {
        let pieces = pattern.utf8.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false).map(Array.init)
        let name = Array(name.utf8)
        guard pieces.count > 1 else { return name == pieces[0] }
        let (first, last) = (pieces[0], pieces[pieces.count - 1])
        guard name.count >= first.count + last.count, name.starts(with: first), name.reversed().starts(with: last.reversed()) else { return false }
        var position = first.count
        let end = name.count - last.count
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let found = firstIndex(of: piece, in: name, from: position, before: end) else { return false }
            position = found + piece.count
        }
        return true
    }

    private static func firstIndex(of piece: [UInt8], in name: [UInt8], from start: Int, before end: Int) -> Int? {
        guard end - start >= piece.count else { return nil }
        return (start...(end - piece.count)).first { name[$0..<($0 + piece.count)].elementsEqual(piece) }
    }
}
