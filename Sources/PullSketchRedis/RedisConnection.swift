import CHiredis
import PullSketchRESP

#if canImport(Glibc)
import Glibc
#endif

/// Where and how to reach Redis.
public struct RedisEndpoint: Hashable, Sendable {
    /// Default "127.0.0.1".
    public var host: String
    /// Default 6379.
    public var port: Int
    /// Sent with AUTH when set. Default nil.
    public var password: String?
    /// The Redis 6 ACL user the password is of, sent with it; nil for the default user (`AUTH
    /// <password>`, as before ACLs). Default nil.
    public var username: String?
    /// Selected with SELECT when not 0. Default 0.
    public var database: Int
    /// Connect, read and write timeout in seconds. Default 2.
    public var timeout: Double
    /// The nodes of a Redis Cluster to learn its slots from (`host:port`); empty for a single
    /// Redis at `host` and `port`. Default empty.
    public var clusterNodes: [String]

    public init(
        host: String = "127.0.0.1", port: Int = 6379, password: String? = nil, username: String? = nil, database: Int = 0, timeout: Double = 2,
        clusterNodes: [String] = []
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.username = username
        self.database = database
        self.timeout = timeout
        self.clusterNodes = clusterNodes
    }

    /// The `AUTH` a new connection sends first; nil without a password.
    public var authentication: [String]? {
        password.map { password in ["AUTH"] + (username.map { [$0] } ?? []) + [password] }
    }

    /// The host and port of `host:port`. An IPv6 host may come in brackets (`[::1]:6379`, as
    /// addresses are usually written) or bare (`::1:6379`, as Redis Cluster names its nodes); the
    /// host comes back bare. Nil when the text is not `host:port`.
    public static func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else {
            return nil
        }
        let host = unbracketed(text[..<colon])
        return host.isEmpty ? nil : (host, port)
    }

    /// `host` without the brackets an IPv6 address may be written in (`[::1]` → `::1`).
    public static func unbracketed(_ host: some StringProtocol) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") && host.count >= 2 ? String(host.dropFirst().dropLast()) : String(host)
    }
}

/// One blocking connection to Redis over hiredis. Not thread-safe, like the `redisContext` it
/// owns: use one per task or thread, off any event loop. Arguments are binary-safe argv vectors.
public final class RedisConnection: RedisCommands {
    public let endpoint: RedisEndpoint
    private let context: UnsafeMutablePointer<redisContext>
    /// Set once an I/O error made the context unusable; every later call fails fast.
    private var brokenReason: String?

    /// hiredis writes with `write()`, which raises SIGPIPE when Redis has closed the connection;
    /// its default action ends the process. Ignored once per process, so a Redis that goes away
    /// is an I/O error to handle, not the end of the node or reconciler.
    private static let sigpipeIgnored: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    public init(_ endpoint: RedisEndpoint) throws(RedisError) {
        Self.sigpipeIgnored
        self.endpoint = endpoint
        let timeout = Self.timeval(seconds: endpoint.timeout)
        guard let context = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), timeout) else {
            throw RedisError(.connection, "out of memory allocating a redis context")
        }
        guard context.pointee.err == 0 else {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(.connection, "connect \(endpoint.host):\(endpoint.port): \(message)")
        }
        redisSetTimeout(context, timeout)
        self.context = context
        do {
            if let authentication = endpoint.authentication {
                _ = try command(authentication)
            }
            if endpoint.database != 0 {
                _ = try command(["SELECT", String(endpoint.database)])
            }
        } catch {
            throw RedisError(.connection, "handshake: \(error.message)")
        }
    }

    deinit {
        redisFree(context)
    }

    /// Sends all commands in one write and reads their replies in order. Error replies are
    /// returned in place, so one failing command does not hide the others' results.
    public func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        if let brokenReason { throw RedisError(.connection, "not sent, the connection is broken: \(brokenReason)") }
        guard !commands.isEmpty else { return [] }
        let request = Self.encode(commands)
        let status = request.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        guard status == REDIS_OK else { throw markBroken() }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw markBroken() }
            defer { freeReplyObject(raw) }
            replies.append(Self.convert(raw.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    /// The commands in Redis's request protocol, one after another, in one buffer that hiredis
    /// sends as it is, rather than formatted argument by argument through hiredis's `sds` strings.
    private static func encode(_ commands: [[[UInt8]]]) -> [UInt8] {
        var request: [UInt8] = []
        request.reserveCapacity(commands.reduce(0) { total, arguments in arguments.reduce(total + 16) { $0 + $1.count + 16 } })
        for arguments in commands { RESPCommand.encode(arguments, into: &request) }
        return request
    }

    private func markBroken() -> RedisError {
        let reason = Self.errorText(context)
        brokenReason = reason
        return RedisError(.io, reason)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .bulk(Array(UnsafeRawBufferPointer(start: value.str, count: value.len)))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: UnsafeRawBufferPointer(start: value.str, count: value.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: value.str, count: value.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            return .array((0..<value.elements).map { convert(value.element[$0]!) })
        default:
            return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func timeval(seconds: Double) -> Glibc.timeval {
        let whole = Int(seconds)
        return Glibc.timeval(tv_sec: whole, tv_usec: Int((seconds - Double(whole)) * 1_000_000))
    }
}
