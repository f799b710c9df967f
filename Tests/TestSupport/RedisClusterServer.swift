public import Foundation

/// A real Redis Cluster on loopback for one test: `masters` masters with a replica each, made by
/// `redis-cli --cluster create` (slots split evenly), append-only, a one-second node timeout so a
/// replica takes over a killed master within a few seconds. Stopped when released.
public final class RedisClusterServer: @unchecked Sendable {
    public let servers: [RedisServer]

    public init(masters: Int = 3) throws {
        servers = try (0..<(2 * masters)).map { _ in
            try RedisServer(appendOnly: true, options: [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                "--cluster-port", String(try freeLoopbackPort()),
            ])
        }
        try ChildProcess.run("/usr/bin/redis-cli", ["--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "1", "--cluster-yes"])
        try waitUntilServing { $0.count == masters }
    }

    /// Every node as `host:port`, for PullSketch to learn the slots from.
    public var nodes: [String] { servers.map { "127.0.0.1:\($0.port)" } }

    /// A master of the cluster as `CLUSTER NODES` lists it.
    public struct Master: Hashable, Sendable {
        public var id: String
        public var port: Int
        public var slots: [ClosedRange<Int>]

        public func serves(_ slot: Int) -> Bool { slots.contains { $0.contains(slot) } }
    }

    /// The masters that are up, as a node still running sees them.
    public func masters() throws -> [Master] {
        for server in servers where server.isRunning {
            guard let text = try? cli(server.port, ["CLUSTER", "NODES"]) else { continue }
            return text.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: " ").map(String.init)
                guard fields.count >= 8, fields[2].contains("master"), !fields[2].contains("fail"),
                    let port = Int(fields[1].split(separator: "@")[0].split(separator: ":").last ?? "")
                else { return nil }
                let slots = fields.dropFirst(8).compactMap { range -> ClosedRange<Int>? in
                    let bounds = range.split(separator: "-").compactMap { Int($0) }
                    return bounds.count == 2 ? bounds[0]...bounds[1] : bounds.count == 1 ? bounds[0]...bounds[0] : nil
                }
                return Master(id: fields[0], port: port, slots: slots)
            }.filter { !$0.slots.isEmpty }
        }
        throw ClusterError("no cluster node answers")
    }

    /// The master serving `slot`.
    public func master(of slot: Int) throws -> Master {
        guard let master = try masters().first(where: { $0.serves(slot) }) else { throw ClusterError("no master serves slot \(slot)") }
        return master
    }

    /// Waits (up to 10 s) until the replica of the master serving `slot` has processed the
    /// master's whole replication stream as it stands now: replication is asynchronous, so a master
    /// killed before that takes acknowledged writes with it. (Not `WAIT`: it waits only for the
    /// writes of the connection that sends it, and a fresh `redis-cli` has sent none.)
    public func waitUntilReplicated(slot: Int) throws {
        let master = try self.master(of: slot)
        let info = try replicationInfo(master.port)
        guard let offset = info["master_repl_offset"].flatMap({ Int($0) }),
            let replica = info["slave0"]?.split(separator: ",").first(where: { $0.hasPrefix("port=") }).flatMap({ Int($0.dropFirst(5)) })
        else { throw ClusterError("the master of slot \(slot) lists no replica") }
        try poll(seconds: 10, every: 0.05, failure: "the replica of slot \(slot) did not catch up within 10 s") {
            try replicationInfo(replica)["slave_repl_offset"].flatMap { Int($0) }.map { $0 >= offset } ?? false
        }
    }

    /// `INFO replication` as fields.
    private func replicationInfo(_ port: Int) throws -> [String: String] {
        var fields: [String: String] = [:]
        for line in try cli(port, ["INFO", "replication"]).split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    /// Kills the master serving `slot` (SIGKILL) and waits until its replica serves the slot.
    public func killMaster(of slot: Int) throws {
        let victim = try master(of: slot)
        servers.first { $0.port == victim.port }!.kill()
        try waitUntilServing { masters in masters.contains { $0.serves(slot) && $0.port != victim.port } }
    }

    /// Moves `slot` to the master `target` while clients keep writing, as `redis-cli --cluster
    /// reshard` does: the target imports, the source migrates, its keys move one at a time every
    /// `pause` (clients get `ASK` or `TRYAGAIN` meanwhile), then every master learns the owner.
    public func migrate(slot: Int, to target: Master, pause: TimeInterval = 0.05) throws {
        let source = try master(of: slot)
        guard source.id != target.id else { return }
        try beginMigration(slot: slot, from: source, to: target)
        try moveKeys(slot: slot, from: source, to: target, perStep: 1, pause: pause)
        try finishMigration(slot: slot, to: target)
    }

    /// Marks `slot` as importing on `target` and migrating on `source`: from now on `source`
    /// answers `ASK` for keys it does not hold.
    public func beginMigration(slot: Int, from source: Master, to target: Master) throws {
        try cli(target.port, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id])
        try cli(source.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id])
    }

    /// Moves every key of `slot` from `source` to `target` with `MIGRATE`, `perStep` at a time.
    public func moveKeys(slot: Int, from source: Master, to target: Master, perStep: Int = 100, pause: TimeInterval = 0) throws {
        while true {
            let keys = try cli(source.port, ["CLUSTER", "GETKEYSINSLOT", String(slot), String(perStep)]).split(separator: "\n").map(String.init)
            guard !keys.isEmpty else { return }
            try cli(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS"] + keys)
            if pause > 0 { Thread.sleep(forTimeInterval: pause) }
        }
    }

    /// Makes `target` the owner of `slot` on every master (others then answer `MOVED`).
    public func finishMigration(slot: Int, to target: Master) throws {
        for master in try masters() {
            try cli(master.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", target.id])
        }
    }

    /// The slot the cluster computes for `key` (`CLUSTER KEYSLOT`).
    public func keySlot(_ key: String) throws -> Int {
        let port = servers.first(where: \.isRunning)!.port
        guard let slot = Int(try cli(port, ["CLUSTER", "KEYSLOT", key]).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ClusterError("CLUSTER KEYSLOT \(key) answered no number")
        }
        return slot
    }

    /// Waits (up to 90 s) until every running node says the cluster is ok and `condition` holds.
    /// Alone a start or a failover takes a few seconds; with the whole suite running on two cores
    /// one of these waits (which one was not recorded) once took more than 30, so the bound only
    /// ends a wait that will not succeed.
    private func waitUntilServing(_ condition: ([Master]) -> Bool) throws {
        try poll(seconds: 90, every: 0.1, failure: "the cluster did not become ready within 90 s") {
            let healthy = servers.filter(\.isRunning).allSatisfy { server in
                (try? cli(server.port, ["CLUSTER", "INFO"]))?.contains("cluster_state:ok") ?? false
            }
            guard healthy, let masters = try? masters() else { return false }
            return masters.reduce(0, { $0 + $1.slots.reduce(0) { $0 + $1.count } }) == 16_384 && condition(masters)
        }
    }

    /// Checks `condition` every `interval` seconds until it holds; throws `failure` after `seconds`.
    private func poll(seconds: TimeInterval, every interval: TimeInterval, failure: String, until condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: interval)
        }
        throw ClusterError(failure)
    }

    /// `redis-cli -p port command…`; an error reply fails.
    @discardableResult
    private func cli(_ port: Int, _ command: [String]) throws -> String {
        let output = try ChildProcess.run("/usr/bin/redis-cli", ["-p", String(port)] + command)
        guard !output.hasPrefix("ERR"), !output.hasPrefix("(error)") else { throw ClusterError("\(command.prefix(3).joined(separator: " ")): \(output)") }
        return output
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
