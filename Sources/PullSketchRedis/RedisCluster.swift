#if canImport(Glibc)
import Glibc
#endif

/// A Redis Cluster over hiredis connections, one per master: each command goes to the master of
/// its key's slot (the slot map from `CLUSTER SLOTS`), and the cluster's answers that come before
/// a command runs are handled here, so a retry never applies anything twice:
///
/// - `MOVED <slot> <host:port>`: the slot has a new master; the map is read again and the command
///   sent there;
/// - `ASK <slot> <host:port>`: the slot is migrating and this key is already at the target; the
///   command goes there once, after `ASKING`, without changing the map;
/// - `TRYAGAIN` (a multi-key command whose keys are split by a migration, or not all at the
///   importing node yet) and `CLUSTERDOWN` (a failover in progress): sent again after a pause,
///   10 ms doubling to 0.5 s, about 5 s in all; then the pipeline fails and its caller retries
///   later, as after any failure (a merge script stays deferred while its shard's slot moves);
/// - a lost connection: the node's connection is dropped, the map is read again (from any node
///   still answering, the configured ones included) before the next command, and the error is
///   thrown, as for a single Redis, since the command's outcome is unknown.
///
/// Every key PullSketch writes carries a `{ps:<shard>}` hash tag, so a shard's keys, and every
/// script on them, live in one slot. Commands of one pipeline that go to one master are pipelined
/// to it; the masters are asked in turn. Only database 0 exists in a cluster.
public final class RedisCluster: RedisCommands {
    /// A command still to answer: its place in the pipeline, the node to ask (nil: its slot's
    /// master), and whether to send `ASKING` before it.
    private typealias Pending = (index: Int, node: String?, asking: Bool)

    private let endpoint: RedisEndpoint
    /// `host:port` of the master serving each of the 16,384 slots; empty while unknown.
    private var masters: [String] = Array(repeating: "", count: RedisCluster.slotCount)
    private var connections: [String: RedisConnection] = [:]
    private var mapIsStale = true
    /// Redirections and retries one command may take before its pipeline fails.
    static let maximumAttempts = 16
    static let slotCount = 16_384

    public init(_ endpoint: RedisEndpoint) throws(RedisError) {
        guard endpoint.database == 0 else { throw RedisError(.connection, "a Redis Cluster has only database 0, not \(endpoint.database)") }
        self.endpoint = endpoint
        try refreshSlots()
    }

    public func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        var replies = [RedisReply?](repeating: nil, count: commands.count)
        var pending: [Pending] = commands.indices.map { ($0, nil, false) }
        for attempt in 0... {
            if mapIsStale { try refreshSlots() }
            var retry: [Pending] = []
            var pause = false
            for (node, group) in try groupByNode(pending, commands) {
                let sent = group.flatMap { $0.asking ? [[Array("ASKING".utf8)], commands[$0.index]] : [commands[$0.index]] }
                let answers = try send(sent, to: node)
                var position = 0
                for item in group {
                    position += item.asking ? 1 : 0
                    let reply = answers[position]
                    position += 1
                    switch Redirection(reply) {
                    case .moved(let target):
                        mapIsStale = true
                        retry.append((item.index, target, false))
                    case .ask(let target):
                        retry.append((item.index, target, true))
                    case .wait:
                        pause = true
                        retry.append((item.index, nil, false))
                    case nil:
                        replies[item.index] = reply
                    }
                }
            }
            guard !retry.isEmpty else { break }
            guard attempt + 1 < Self.maximumAttempts else {
                throw RedisError(.server, "the cluster redirected or deferred a command \(Self.maximumAttempts) times")
            }
            if pause { usleep(UInt32(min(500_000, 10_000 << min(attempt, 6)))) }
            // A command is sent again in its pipeline's order, so a shard's commands stay in order.
            pending = retry.sorted { $0.index < $1.index }
        }
        return replies.map { $0! }
    }

    /// One command's reply from every master, for commands about a whole server (`INFO`, `DBSIZE`).
    public func everyMaster(_ command: [String]) throws(RedisError) -> [RedisReply] {
        if mapIsStale { try refreshSlots() }
        return try Set(masters.filter { !$0.isEmpty }).sorted().map { (node) throws(RedisError) in
            try send([command.map { Array($0.utf8) }], to: node)[0]
        }
    }

    /// The pending commands grouped by the node to send them to, in order.
    private func groupByNode(
        _ pending: [Pending], _ commands: [[[UInt8]]]
    ) throws(RedisError) -> [(node: String, items: [Pending])] {
        var order: [String] = []
        var groups: [String: [Pending]] = [:]
        for item in pending {
            let node = if let node = item.node { node } else { try master(for: commands[item.index]) }
            if groups[node] == nil { order.append(node) }
            groups[node, default: []].append(item)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// The master of the command's key's slot; any master for a command without a key.
    private func master(for command: [[UInt8]]) throws(RedisError) -> String {
        let node = Self.routingKey(command).map { masters[Self.slot(of: $0)] } ?? masters.first { !$0.isEmpty }
        guard let node, !node.isEmpty else {
            mapIsStale = true
            throw RedisError(.connection, "no master serves the slot of this command yet")
        }
        return node
    }

    private func send(_ commands: [[[UInt8]]], to node: String) throws(RedisError) -> [RedisReply] {
        do {
            return try connection(to: node).pipeline(commands)
        } catch {
            connections[node] = nil
            mapIsStale = true
            throw error
        }
    }

    private func connection(to node: String) throws(RedisError) -> RedisConnection {
        if let connection = connections[node] { return connection }
        guard let (host, port) = RedisEndpoint.address(node) else { throw RedisError(.connection, "not a host:port: \(node)") }
        var target = endpoint
        target.host = host
        target.port = port
        let connection = try RedisConnection(target)
        connections[node] = connection
        return connection
    }

    /// Reads the slot map from the first node that answers: the masters known so far, then the
    /// configured nodes.
    private func refreshSlots() throws(RedisError) {
        let known = Set(masters.filter { !$0.isEmpty })
        var failures: [String] = []
        for node in known.sorted() + endpoint.clusterNodes where !failures.contains(node) {
            do {
                let reply = try connection(to: node).command(["CLUSTER", "SLOTS"])
                masters = try Self.masters(from: reply, askedNode: node)
                mapIsStale = false
                return
            } catch {
                connections[node] = nil
                failures.append(node)
            }
        }
        throw RedisError(.connection, "no cluster node answered CLUSTER SLOTS (tried \(failures.joined(separator: ", ")))")
    }

    /// The master of every slot from a `CLUSTER SLOTS` reply: entries of start, end, then the
    /// master's address (an empty host means the node that was asked).
    static func masters(from reply: RedisReply, askedNode: String) throws(RedisError) -> [String] {
        guard case .array(let ranges) = reply else { throw RedisError(.unexpectedReply, "CLUSTER SLOTS answered \(reply)") }
        let askedHost = RedisEndpoint.address(askedNode)?.host ?? ""
        var masters = [String](repeating: "", count: slotCount)
        for range in ranges {
            guard case .array(let fields) = range, fields.count >= 3, case .integer(let start) = fields[0], case .integer(let end) = fields[1],
                case .array(let master) = fields[2], master.count >= 2, case .bulk(let host) = master[0], case .integer(let port) = master[1],
                0 <= start, start <= end, end < slotCount
            else { throw RedisError(.unexpectedReply, "CLUSTER SLOTS answered a range \(range)") }
            let name = host.isEmpty ? askedHost : String(decoding: host, as: UTF8.self)
            for slot in Int(start)...Int(end) { masters[slot] = "\(name):\(port)" }
        }
        return masters
    }

    /// The key a command is routed by: an `EVAL`'s first key, else the first argument.
    static func routingKey(_ command: [[UInt8]]) -> [UInt8]? {
        guard let name = command.first.map({ String(decoding: $0, as: UTF8.self).uppercased() }) else { return nil }
        if name == "EVAL" || name == "EVALSHA" {
            guard command.count > 3, let keys = Int(String(decoding: command[2], as: UTF8.self)), keys > 0 else { return nil }
            return command[3]
        }
        return command.count > 1 && !["PING", "TIME", "INFO", "CLUSTER", "ASKING"].contains(name) ? command[1] : nil
    }

    /// The cluster slot of a shard's keys (`{ps:<shard>}…`).
    public static func slot(ofShard shard: Int) -> Int {
        slot(ofKey: ShardLayout(shard: shard).prefix)
    }

    public static func slot(ofKey key: String) -> Int {
        slot(of: Array(key.utf8))
    }

    /// The cluster slot of a key: CRC16 (XMODEM) of its hash tag (the text between the first `{`
    /// and the next `}`, when not empty) or of the whole key, modulo 16,384.
    static func slot(of key: [UInt8]) -> Int {
        var hashed = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = key[(open + 1)..<close]
        }
        var crc: UInt16 = 0
        for byte in hashed {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return Int(crc) % slotCount
    }
}

/// The answers of a cluster that say to send a command again, elsewhere or later.
private enum Redirection {
    case moved(String)
    case ask(String)
    case wait

    init?(_ reply: RedisReply) {
        guard case .error(let message) = reply else { return nil }
        let words = message.split(separator: " ")
        switch words.first {
        case "MOVED" where words.count == 3: self = .moved(String(words[2]))
        case "ASK" where words.count == 3: self = .ask(String(words[2]))
        case "TRYAGAIN", "CLUSTERDOWN": self = .wait
        default: return nil
        }
    }
}
