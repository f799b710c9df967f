public import PullSketchCore
public import PullSketchRESP

/// What one client connection to the Quay endpoint may do, and what it has done.
public struct QuaySessionConfiguration: Hashable, Sendable {
    /// The password `AUTH` must give; nil: none, as a Redis without `requirepass`.
    public var password: String?
    /// The user `AUTH` must name, as a Redis 6 ACL user; `AUTH <password>` names `default`.
    public var username: String
    /// How far before its arrival a pull's time may lie (the node's `max_event_delay_ms`).
    public var maximumDelay: Duration

    public init(password: String? = nil, username: String = "default", maximumDelay: Duration = .seconds(600)) {
        self.password = password
        self.username = username
        self.maximumDelay = maximumDelay
    }
}

/// One client connection speaking Redis to PullSketch as Quay's registry speaks to the Redis named
/// by `PULL_METRICS_REDIS`. It answers the connection commands as Redis would, takes the pull
/// writes of every Quay release by their key (one pull per `EVAL`/`EVALSHA` of a pull script, or
/// per `HINCRBY <key> pull_count`), answers `SCAN` with nothing so Quay's own flush worker idles,
/// and refuses everything else with an error reply.
///
/// A pull's time is the `last_pull_timestamp` the client sent with it (clamped like every event
/// time), else its arrival: the releases that send the timestamp in a separate `HSET` after the
/// `HINCRBY` get it as long as both arrive in the same read, which a pipeline or transaction does.
public struct QuaySession {
    /// What a command asks of the connection after its reply.
    public struct Answer: Hashable, Sendable {
        public var reply: RESPReply
        /// Close the connection once the reply is written (`QUIT`).
        public var close: Bool = false
    }

    private struct PendingPull {
        var key: [UInt8]
        var repositoryID: Int64
        var reference: QuayPull.Reference
        var count: Int
        var seconds: Int64?
    }

    /// Redis's default number of databases; `SELECT` outside it fails as on Redis.
    static let databases = 16
    /// Commands a transaction may queue.
    static let maximumQueued = 10_000
    static let timestampField = Array("last_pull_timestamp".utf8)
    static let countField = Array("pull_count".utf8)

    private let configuration: QuaySessionConfiguration
    private let scripts: ScriptDirectory
    private var authenticated: Bool
    /// Commands queued since `MULTI`; nil outside a transaction.
    private var queued: [[[UInt8]]]?
    private var transactionFailed = false
    private var pending: [PendingPull] = []
    /// The last `last_pull_timestamp` written, and to which key.
    private var lastTimestamp: (key: [UInt8], seconds: Int64)?
    /// Commands refused since the last `takeRefusals()`, by reason.
    private var refusals: [QuayInputError] = []

    public init(configuration: QuaySessionConfiguration, scripts: ScriptDirectory) {
        self.configuration = configuration
        self.scripts = scripts
        authenticated = configuration.password == nil
    }

    /// Answers one command (name first, any case).
    public mutating func handle(_ command: [[UInt8]]) -> Answer {
        let name = String(decoding: command[0], as: UTF8.self).uppercased()
        let arguments = Array(command.dropFirst())
        if !authenticated, name != "AUTH", name != "QUIT" {
            return Answer(reply: .error("NOAUTH Authentication required."))
        }
        if queued != nil {
            switch name {
            case "EXEC": return Answer(reply: execute())
            case "DISCARD":
                queued = nil
                return Answer(reply: .ok)
            case "MULTI": return Answer(reply: .error("ERR MULTI calls can not be nested"))
            case "QUIT": return Answer(reply: .ok, close: true)
            default:
                guard Self.transactional.contains(name) else {
                    transactionFailed = true
                    return Answer(reply: Self.unknown(name))
                }
                guard queued!.count < Self.maximumQueued else {
                    transactionFailed = true
                    return Answer(reply: .error("ERR more than \(Self.maximumQueued) commands in one transaction"))
                }
                queued!.append(command)
                return Answer(reply: .simple("QUEUED"))
            }
        }
        switch name {
        case "MULTI":
            queued = []
            transactionFailed = false
            return Answer(reply: .ok)
        case "EXEC": return Answer(reply: .error("ERR EXEC without MULTI"))
        case "DISCARD": return Answer(reply: .error("ERR DISCARD without MULTI"))
        case "QUIT": return Answer(reply: .ok, close: true)
        case "AUTH": return Answer(reply: authenticate(arguments))
        default: return Answer(reply: run(name, arguments))
        }
    }

    /// The pulls this connection reported since the last call, with their times settled against
    /// `receivedAt`; call after each read.
    public mutating func takePulls(receivedAt: Timestamp) -> [QuayPull] {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending.map { pull in
            let sent = pull.seconds.map { seconds in
                let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000)
                return Timestamp(millisecondsSinceEpoch: overflow ? (seconds < 0 ? .min : .max) : milliseconds)
            }
            return QuayPull(repositoryID: pull.repositoryID, reference: pull.reference, count: pull.count,
                            time: (sent ?? receivedAt).clamped(toArrival: receivedAt, maximumDelay: configuration.maximumDelay))
        }
    }

    /// The commands refused since the last call, by reason.
    public mutating func takeRefusals() -> [QuayInputError] {
        defer { refusals.removeAll(keepingCapacity: true) }
        return refusals
    }

    /// Commands that may be queued in a transaction.
    private static let transactional: Set<String> = ["PING", "ECHO", "SELECT", "HSET", "HMSET", "HINCRBY", "EXPIRE", "EVAL", "EVALSHA", "SCAN"]

    private mutating func execute() -> RESPReply {
        let commands = queued ?? []
        queued = nil
        guard !transactionFailed else { return .error("EXECABORT Transaction discarded because of previous errors.") }
        return .array(commands.map { run(String(decoding: $0[0], as: UTF8.self).uppercased(), Array($0.dropFirst())) })
    }

    private mutating func authenticate(_ arguments: [[UInt8]]) -> RESPReply {
        guard arguments.count == 1 || arguments.count == 2 else { return Self.arity("auth") }
        guard let password = configuration.password else {
            return .error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
        }
        let user = arguments.count == 2 ? arguments[0] : Array("default".utf8)
        // Both comparisons always run, so the reply time does not tell which part was wrong.
        let passwordMatches = Self.constantTimeEquals(arguments[arguments.count - 1], Array(password.utf8))
        let userMatches = Self.constantTimeEquals(user, Array(configuration.username.utf8))
        guard passwordMatches, userMatches else { return .error("WRONGPASS invalid username-password pair or user is disabled.") }
        authenticated = true
        return .ok
    }

    private mutating func run(_ name: String, _ arguments: [[UInt8]]) -> RESPReply {
        switch name {
        case "PING":
            guard arguments.count <= 1 else { return Self.arity("ping") }
            return arguments.first.map { .bulk($0) } ?? .simple("PONG")
        case "ECHO":
            guard arguments.count == 1 else { return Self.arity("echo") }
            return .bulk(arguments[0])
        case "SELECT":
            guard arguments.count == 1 else { return Self.arity("select") }
            guard let index = Self.integer(arguments[0]) else { return Self.notAnInteger }
            return (0..<Int64(Self.databases)).contains(index) ? .ok : .error("ERR DB index is out of range")
        case "CLIENT":
            return client(arguments)
        case "SCAN":
            guard !arguments.isEmpty else { return Self.arity("scan") }
            guard Self.integer(arguments[0]) != nil else { return .error("ERR invalid cursor") }
            return .array([.bulk("0"), .array([])])
        case "SCRIPT":
            return script(arguments)
        case "EVAL", "EVALSHA":
            return evaluate(name, arguments)
        case "HSET", "HMSET":
            guard arguments.count >= 3, arguments.count % 2 == 1 else { return Self.arity(name.lowercased()) }
            if let refusal = refusal(key: arguments[0]) { return refusal }
            for index in stride(from: 1, to: arguments.count, by: 2) where arguments[index] == Self.timestampField {
                guard let seconds = Self.integer(arguments[index + 1]) else { continue }
                rememberTimestamp(seconds, for: arguments[0])
            }
            return name == "HMSET" ? .ok : .integer(Int64(arguments.count / 2))
        case "HINCRBY":
            guard arguments.count == 3 else { return Self.arity("hincrby") }
            if let refusal = refusal(key: arguments[0]) { return refusal }
            guard let increment = Self.integer(arguments[2]) else { return Self.notAnInteger }
            guard arguments[1] == Self.countField else { return .integer(increment) }
            return report(key: arguments[0], count: increment, seconds: lastTimestamp?.key == arguments[0] ? lastTimestamp?.seconds : nil)
                ?? .integer(increment)
        case "EXPIRE":
            guard arguments.count >= 2 else { return Self.arity("expire") }
            if let refusal = refusal(key: arguments[0]) { return refusal }
            return Self.integer(arguments[1]) == nil ? Self.notAnInteger : .integer(1)
        default:
            return Self.unknown(name)
        }
    }

    private func client(_ arguments: [[UInt8]]) -> RESPReply {
        guard let subcommand = arguments.first.map({ String(decoding: $0, as: UTF8.self).uppercased() }) else { return Self.arity("client") }
        switch subcommand {
        case "SETINFO":
            return arguments.count == 3 ? .ok : Self.arity("client|setinfo")
        case "SETNAME":
            return arguments.count == 2 ? .ok : Self.arity("client|setname")
        case "GETNAME":
            return .bulk(nil)
        default:
            return .error("ERR unknown subcommand '\(subcommand.lowercased())'. Try CLIENT HELP.")
        }
    }

    private func script(_ arguments: [[UInt8]]) -> RESPReply {
        switch arguments.first.map({ String(decoding: $0, as: UTF8.self).uppercased() }) {
        case "LOAD":
            guard arguments.count == 2 else { return Self.arity("script|load") }
            return .bulk(scripts.load(arguments[1]))
        case "EXISTS":
            guard arguments.count >= 2 else { return Self.arity("script|exists") }
            return .array(arguments.dropFirst().map { .integer(scripts.contains($0) ? 1 : 0) })
        default:
            return .error("ERR PullSketch supports only SCRIPT LOAD and SCRIPT EXISTS")
        }
    }

    /// A pull script: one `pull_events` key; the arguments end with the time in epoch seconds and
    /// the pull method (`<id> <tag> <digest> <seconds> tag`, `<id> <digest> <seconds> digest`).
    /// Answers what Quay's script returns, the key's pull count since the last flush: the pulls
    /// this call reported, as PullSketch flushes continuously.
    private mutating func evaluate(_ name: String, _ arguments: [[UInt8]]) -> RESPReply {
        guard arguments.count >= 2 else { return Self.arity(name.lowercased()) }
        guard let keyCount = Self.integer(arguments[1]), keyCount >= 0 else {
            return .error("ERR value is not an integer or out of range")
        }
        guard keyCount <= arguments.count - 2 else { return .error("ERR Number of keys can't be greater than number of args") }
        if name == "EVAL" {
            scripts.load(arguments[0])
        } else if !scripts.contains(arguments[0]) {
            return .error("NOSCRIPT No matching script. Please use EVAL.")
        }
        guard keyCount == 1 else {
            refusals.append(.notAPull)
            return .error(QuayInputError.notAPull.message)
        }
        if let refusal = refusal(key: arguments[2]) { return refusal }
        let values = arguments.dropFirst(3)
        let seconds = values.count >= 2 ? Self.integer(values[values.endIndex - 2]) : nil
        return report(key: arguments[2], count: 1, seconds: seconds) ?? .bulk("1")
    }

    /// Queues a pull of `key`; nil when taken, else the error reply.
    private mutating func report(key: [UInt8], count: Int64, seconds: Int64?) -> RESPReply? {
        guard (1...1_000).contains(count) else {
            refusals.append(.invalidIncrement)
            return .error(QuayInputError.invalidIncrement.message)
        }
        do {
            let (repositoryID, reference) = try QuayPullKey.parse(key)
            pending.append(PendingPull(key: key, repositoryID: repositoryID, reference: reference, count: Int(count), seconds: seconds))
            return nil
        } catch {
            refusals.append(error)
            return .error(error.message)
        }
    }

    /// A timestamp for `key`: it dates the key's pulls of this read that came without one, and
    /// the next `HINCRBY` of the key.
    private mutating func rememberTimestamp(_ seconds: Int64, for key: [UInt8]) {
        lastTimestamp = (key, seconds)
        for index in pending.indices where pending[index].seconds == nil && pending[index].key == key {
            pending[index].seconds = seconds
        }
    }

    /// The error reply for a key outside Quay's pull-metrics key space, recorded as a refusal.
    private mutating func refusal(key: [UInt8]) -> RESPReply? {
        guard !QuayPullKey.isPullKey(key) else { return nil }
        refusals.append(.notAPull)
        return .error(QuayInputError.notAPull.message)
    }

    private static func integer(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count <= 20 else { return nil }
        return Int64(String(decoding: bytes, as: UTF8.self))
    }

    private static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference: UInt8 = lhs.count == rhs.count ? 0 : 1
        for index in 0..<max(lhs.count, rhs.count) {
            difference |= (index < lhs.count ? lhs[index] : 0) ^ (index < rhs.count ? rhs[index] : 0)
        }
        return difference == 0
    }

    private static let notAnInteger = RESPReply.error("ERR value is not an integer or out of range")

    private static func arity(_ command: String) -> RESPReply {
        .error("ERR wrong number of arguments for '\(command)' command")
    }

    private static func unknown(_ name: String) -> RESPReply {
        .error("ERR unknown command '\(name.prefix(64).lowercased())': PullSketch answers only Quay's pull-metrics commands")
    }
}
