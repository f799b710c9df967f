public import PullSketchCore

/// What became of one shard part of a merged window.
public enum MergeOutcome: Hashable, Sendable {
    case applied
    /// The shard's ledger already had this (node, sequence): a retry of a merge that landed.
    case alreadyApplied
    /// The shard's ledger is behind what the node was told it applied: Redis went back to an older
    /// state, or the reconciler discarded a batch it found already counted. Nothing was written;
    /// the node must send its parts after `MergeReply.ledger` again, in order.
    case rewound
    /// Redis refused the merge before it wrote anything (`BatchStore.refusesBeforeWriting`): over
    /// its `maxmemory`, a read-only replica, loading its data. The part is not in Redis.
    case refused
}

/// One window part to merge, and what its node last heard from the shard.
public struct PartMerge: Hashable, Sendable {
    public var sequence: UInt64
    /// The sequence the node last saw the shard's ledger acknowledge (0 for none).
    public var expected: UInt64
    public var part: ShardWindow

    public init(sequence: UInt64, expected: UInt64, part: ShardWindow) {
        self.sequence = sequence
        self.expected = expected
        self.part = part
    }
}

/// A shard's answer to one merge.
public struct MergeReply: Hashable, Sendable {
    public var outcome: MergeOutcome
    /// The shard's ledger sequence for the node after the merge (0 when it was refused).
    public var ledger: UInt64
    /// The last sequence of the node whose parts PostgreSQL holds, as the reconciler last said.
    public var confirmed: UInt64

    public init(outcome: MergeOutcome, ledger: UInt64, confirmed: UInt64) {
        self.outcome = outcome
        self.ledger = ledger
        self.confirmed = confirmed
    }
}

/// Live and sealed batches in Redis, over one connection. Like the connection, not
/// thread-safe: one store per task.
public final class BatchStore {
    public let shardCount: Int
    private let connection: any RedisCommands
    /// How long the ledger remembers a node that stopped merging, by Redis's clock. Default one day.
    public let ledgerMemoryMilliseconds: Int64

    public init(connection: any RedisCommands, shardCount: Int, ledgerMemoryMilliseconds: Int64 = 86_400_000) {
        self.connection = connection
        self.shardCount = shardCount
        self.ledgerMemoryMilliseconds = ledgerMemoryMilliseconds
    }

    /// What a shard's live batch is stamped with at its first merge and every later merge must
    /// match: the sketch's fingerprint and the shard count, which decides which shard a key's
    /// pulls go to. A process started with another shard count is refused, not silently mixed in.
    static func layoutFingerprint(_ parameters: SketchParameters, shardCount: Int) -> String {
        "\(parameters.fingerprint):n\(shardCount)"
    }

    /// Applies every non-empty shard part of `window` to its shard's live batch, each atomically and
    /// at most once per (`node`, sequence), in one round trip, without checking what the node
    /// heard before (expected 0). Returns the outcome per part sent.
    @discardableResult
    public func merge(_ window: Window, node: String) throws -> [Int: MergeOutcome] {
        let parts = window.shards.filter { !$0.isEmpty }.map { PartMerge(sequence: window.sequence, expected: 0, part: $0) }
        let replies = try merge(parts, parameters: window.parameters, node: node)
        if let refused = zip(parts, replies).first(where: { $1.outcome == .refused }) {
            throw RedisError(.server, "merge into shard \(refused.0.part.shard): redis refused it before writing")
        }
        return Dictionary(uniqueKeysWithValues: zip(parts, replies).map { ($0.part.shard, $1.outcome) })
    }

    /// Applies each part to its shard's live batch, in order, each atomically and at most once per
    /// (`node`, sequence), in one round trip; a part Redis refuses over its memory limit is
    /// `.refused`, the others are still applied. Throws `BatchStoreError.sketchMismatch` if a shard
    /// has other sketch parameters (that part changes nothing), or a `RedisError`.
    public func merge(_ parts: [PartMerge], parameters: SketchParameters, node: String) throws -> [MergeReply] {
        guard !parts.isEmpty else { return [] }
        let fingerprint = Self.layoutFingerprint(parameters, shardCount: shardCount)
        let commands = parts.map { mergeCommand($0, parameters: parameters, fingerprint: fingerprint, node: node) }
        return try zip(parts, try connection.pipeline(commands)).map { merge, reply in
            let shard = merge.part.shard
            switch reply {
            case .array(let values) where values.count == 3:
                guard case .integer(let outcome) = values[0], case .integer(let ledger) = values[1], case .integer(let confirmed) = values[2],
                    let outcome = [1: MergeOutcome.applied, 0: .alreadyApplied, 2: .rewound][outcome], ledger >= 0, confirmed >= 0
                else { throw RedisError(.unexpectedReply, "merge into shard \(shard) answered \(reply)") }
                return MergeReply(outcome: outcome, ledger: UInt64(ledger), confirmed: UInt64(confirmed))
            case .error(let message) where message.hasPrefix(BatchScripts.fingerprintMismatch):
                throw BatchStoreError(.sketchMismatch, "shard \(shard): \(message.dropFirst(BatchScripts.fingerprintMismatch.count))")
            case .error(let message) where Self.refusesBeforeWriting(message):
                return MergeReply(outcome: .refused, ledger: 0, confirmed: 0)
            case .error(let message):
                throw RedisError(.server, "merge into shard \(shard): \(message)")
            default:
                throw RedisError(.unexpectedReply, "merge into shard \(shard) answered \(reply)")
            }
        }
    }

    /// Discards everything of the shard that PostgreSQL does not hold — the live batch and every
    /// sealed batch — and sets the ledger (and the confirmations) to `reconciled`, node id → the
    /// last sequence PostgreSQL holds, so that every node sends its later parts again. For a Redis
    /// that went back to an older state.
    public func rewind(shard: Int, to reconciled: [String: UInt64]) throws {
        let layout = ShardLayout(shard: shard)
        let batches = try sealedBatches(shard: shard)
        let keys = layout.live.all + [layout.fingerprint, layout.ledger, layout.ledgerTouched, layout.confirmed, layout.sealed]
            + batches.flatMap { layout.batch(String($0)).all }
        let arguments = [String(batches.count)] + batches.map(String.init) + reconciled.sorted { $0.key < $1.key }.flatMap { [$0.key, String($0.value)] }
        _ = try connection.command(["EVAL", BatchScripts.rewind, String(keys.count)] + keys + arguments)
    }

    /// Moves the shard's live batch to the next sealed batch in one atomic step. Returns its
    /// number, or nil when nothing was live. The number is above `floor`: pass the highest batch
    /// number already reconciled, so that a Redis which lost its data cannot reuse one.
    @discardableResult
    public func seal(shard: Int, floor: Int64 = 0, now: Timestamp = .now()) throws -> Int64? {
        let layout = ShardLayout(shard: shard)
        // Another sealer may move the sequence between the read and the script; a few tries.
        for _ in 0..<5 {
            let read: String
            switch try connection.command(["GET", layout.sealSequence]) {
            case .null: read = "0"
            case .bulk(let bytes): read = String(decoding: bytes, as: UTF8.self)
            case let reply: throw RedisError(.unexpectedReply, "\(layout.sealSequence) holds \(reply)")
            }
            guard let current = Int64(read) else { throw BatchStoreError(.malformed, "\(layout.sealSequence) holds \(read), not a number") }
            let number = max(current, floor) + 1
            let keys = layout.live.all + layout.batch(String(number)).all + [layout.sealed, layout.fingerprint, layout.sealSequence]
            let arguments = ["EVAL", BatchScripts.seal, String(keys.count)] + keys + [read, String(number), String(now.millisecondsSinceEpoch)]
            switch try connection.command(arguments) {
            case .integer(-1): continue
            case .integer(0): return nil
            case .integer(let sealed): return sealed
            case let reply: throw RedisError(.unexpectedReply, "seal shard \(shard) answered \(reply)")
            }
        }
        throw BatchStoreError(.malformed, "shard \(shard)'s seal sequence kept moving while sealing")
    }

    /// Takes the shard's lease for `owner`, or renews it if `owner` holds it, for `duration`.
    /// Returns false when another owner holds it.
    public func lease(shard: Int, owner: String, duration: Duration) throws -> Bool {
        let milliseconds = max(1, duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000)
        let reply = try connection.command(["EVAL", BatchScripts.lease, "1", ShardLayout(shard: shard).lease, owner, String(milliseconds)])
        guard case .integer(let held) = reply else { throw RedisError(.unexpectedReply, "lease on shard \(shard) answered \(reply)") }
        return held == 1
    }

    /// The shard counts, other than this store's, that batches waiting in Redis (live or sealed, in
    /// any shard a configuration allows) were merged with. While there are any, a process with this
    /// store's count must not start: the old layout's reconciler has to drain them first.
    public func otherLayoutsWaiting(maximumShards: Int = 1_024) throws -> Set<Int> {
        let layouts = (0..<maximumShards).map(ShardLayout.init(shard:))
        let replies = try connection.pipeline(layouts.flatMap { layout in
            [["GET", layout.fingerprint], ["LRANGE", layout.sealed, "0", "-1"]].map { $0.map { Array($0.utf8) } }
        })
        var stamps: [RedisReply] = []
        var sealedTails: [String] = []
        for (index, layout) in layouts.enumerated() {
            stamps.append(replies[2 * index])
            guard case .array(let numbers) = replies[2 * index + 1] else { continue }
            for case .bulk(let number) in numbers { sealedTails.append(layout.batch(String(decoding: number, as: UTF8.self)).tail) }
        }
        if !sealedTails.isEmpty {
            stamps += try connection.pipeline(sealedTails.map { ["HGET", $0, "fingerprint"].map { Array($0.utf8) } })
        }
        let counts = stamps.compactMap { stamp -> Int? in
            guard case .bulk(let bytes) = stamp, let separator = bytes.lastIndex(of: UInt8(ascii: ":")), bytes[(separator + 1)...].first == UInt8(ascii: "n") else {
                return nil
            }
            return Int(String(decoding: bytes[(separator + 2)...], as: UTF8.self))
        }
        return Set(counts).subtracting([shardCount])
    }

    /// Says reconciler `owner` is alive for `duration` and returns the reconcilers alive, by name:
    /// each works its share of the shards, so a new one gets work within a pass or two and the
    /// shards of one that stopped are taken once their leases expire.
    public func announceReconciler(_ owner: String, for duration: Duration) throws -> [String] {
        let milliseconds = max(1, duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000)
        let reply = try connection.command(["EVAL", BatchScripts.reconcilers, "1", Self.reconcilersKey, owner, String(milliseconds)])
        guard case .array(let members) = reply else { throw RedisError(.unexpectedReply, "announcing a reconciler answered \(reply)") }
        return members.compactMap { member in if case .bulk(let name) = member { String(decoding: name, as: UTF8.self) } else { nil } }.sorted()
    }

    /// Says reconciler `owner` stopped.
    public func withdrawReconciler(_ owner: String) throws {
        _ = try connection.command(["EVAL", BatchScripts.reconcilers, "1", Self.reconcilersKey, owner, "0"])
    }

    /// The sorted set of live reconcilers (owner → last announcement, ms).
    static let reconcilersKey = "pullsketch:reconcilers"

    /// Whether Redis answered a script with `message` before the script wrote anything. Over its
    /// `maxmemory` Redis refuses a script's first write only (`OOM command not allowed …`; Redis 6
    /// wraps the same words in `ERR Error running script …`); a read-only replica refuses every
    /// write (`READONLY`), and nothing that changes that runs while a script does; and a Redis
    /// loading its data (`LOADING`), running another script too long (`BUSY`) or a replica cut off
    /// from its master (`MASTERDOWN`) refuses the command before running it. Not `MISCONF` (a
    /// failed save or append-only write) nor `NOREPLICAS`: their state may change between two
    /// writes of one script, so a script they stopped may have written part of its merge.
    static func refusesBeforeWriting(_ message: String) -> Bool {
        message.contains("OOM command not allowed")
            || ["READONLY", "LOADING", "BUSY", "MASTERDOWN"].contains { message.hasPrefix($0 + " ") || message.contains("-\($0) ") }
    }

    /// Gives up the shard's lease if `owner` holds it.
    public func releaseLease(shard: Int, owner: String) throws {
        _ = try connection.command(["EVAL", BatchScripts.release, "1", ShardLayout(shard: shard).lease, owner])
    }

    /// The shard's sealed batches, oldest first.
    public func sealedBatches(shard: Int) throws -> [Int64] {
        try numbers(in: ShardLayout(shard: shard).sealed)
    }

    private func numbers(in key: String) throws -> [Int64] {
        guard case .array(let items) = try connection.command(["LRANGE", key, "0", "-1"]) else {
            throw BatchStoreError(.malformed, "\(key) is not a list")
        }
        return try items.map { item in
            guard case .bulk(let bytes) = item, let number = Int64(String(decoding: bytes, as: UTF8.self)) else {
                throw BatchStoreError(.malformed, "\(key) holds \(item), not a batch number")
            }
            return number
        }
    }

    /// When the shard's oldest sealed batch was sealed; nil when none is waiting.
    public func oldestSealTime(shard: Int) throws -> Timestamp? {
        guard let oldest = try sealedBatches(shard: shard).first else { return nil }
        let key = ShardLayout(shard: shard).batch(String(oldest)).tail
        let reply = try connection.command(["HGET", key, "sealed"])
        guard reply != .null else { return nil }  // deleted meanwhile by another reconciler
        guard case .bulk(let bytes) = reply, let milliseconds = Int64(String(decoding: bytes, as: UTF8.self)) else {
            throw BatchStoreError(.malformed, "\(key) has seal time \(reply)")
        }
        return Timestamp(millisecondsSinceEpoch: milliseconds)
    }

    /// Reads a sealed batch, hashes and sketch in chunks, and checks every value. Nil when the
    /// batch is gone: deleted, after it was reconciled, by another reconciler.
    public func readBatch(shard: Int, number: Int64) throws -> SealedBatch? {
        let reader = BatchReader(connection: connection, keys: ShardLayout(shard: shard).batch(String(number)), shardCount: shardCount)
        return try reader.read(shard: shard, number: number)
    }

    /// The shard's oldest sealed batch, read; nil when none waits.
    public func oldestBatch(shard: Int) throws -> SealedBatch? {
        guard let number = try sealedBatches(shard: shard).first else { return nil }
        return try readBatch(shard: shard, number: number)
    }

    /// Deletes a sealed batch and unlists it and, in the same step, tells the shard's nodes which
    /// of their window parts PostgreSQL holds now (`confirming`, node id → last sequence), so they
    /// stop keeping them for a re-send.
    public func deleteBatch(shard: Int, number: Int64, confirming windows: [String: UInt64] = [:]) throws {
        let layout = ShardLayout(shard: shard)
        let keys = layout.batch(String(number)).all + [layout.sealed, layout.confirmed]
        let confirmations = windows.sorted { $0.key < $1.key }.flatMap { [$0.key, String($0.value)] }
        _ = try connection.command(["EVAL", BatchScripts.delete, String(keys.count)] + keys + [String(number)] + confirmations)
    }

    /// A sealed batch's keys as they are, whatever they hold, as one JSON object by key name: a
    /// hash as an object, a string as base64 (as its length alone beyond `stringLimit` bytes),
    /// anything else as its type. For the quarantine, which keeps a batch that cannot be read.
    public func rawBatch(shard: Int, number: Int64, stringLimit: Int = 16 << 20) throws -> [UInt8] {
        let reader = BatchReader(connection: connection, keys: ShardLayout(shard: shard).batch(String(number)), shardCount: shardCount)
        return try reader.raw(stringLimit: stringLimit)
    }

    private func mergeCommand(_ merge: PartMerge, parameters: SketchParameters, fingerprint: String, node: String) -> [[UInt8]] {
        let part = merge.part
        let layout = ShardLayout(shard: part.shard)
        let keys = layout.live.all + [layout.fingerprint, layout.ledger, layout.ledgerTouched, layout.confirmed, layout.mergeUsage]
        let usageBitmap = Self.usageBitmap(part.usageBits, parameters)
        let usageBitIndexes = usageBitmap == nil ? part.usageBits : []
        var arguments: [String] = ["EVAL", BatchScripts.merge, String(keys.count)] + keys
        arguments += [
            node, String(merge.sequence), String(merge.expected), fingerprint, String(ledgerMemoryMilliseconds),
            String(part.hotEntries.count), String(part.sketchCells.count), String(usageBitIndexes.count), String(part.tailRepositories.count),
            String(part.tailMass), Self.milliseconds(part.tailLastPulled), Self.milliseconds(part.tailLastUsed),
            part.tailRepositoriesOverflowed ? "1" : "0", String(part.tailNames.count), String(part.unnamedPullsOfOverflow),
            usageBitmap == nil ? "0" : "1",
        ]
        arguments.reserveCapacity(
            arguments.count + part.hotEntries.count * 8 + part.sketchCells.count * 2 + usageBitIndexes.count + part.tailRepositories.count * 6
                + part.tailNames.count
        )
        for entry in part.hotEntries {
            arguments += [
                ShardLayout.field(entry.key),
                String(entry.fetches), String(entry.checks), String(entry.pulls), Self.milliseconds(entry.lastPulled),
                Self.milliseconds(entry.lastUsed), String(entry.currentDigestAt.millisecondsSinceEpoch), entry.currentDigest?.value ?? "",
            ]
        }
        for cell in part.sketchCells {
            arguments += ["#\(cell.index)", String(cell.count)]
        }
        arguments += usageBitIndexes.map { String($0) }
        for tail in part.tailRepositories {
            arguments += [
                tail.repository.value, String(tail.pulls), Self.milliseconds(tail.lastPulled), Self.milliseconds(tail.lastUsed),
                String(tail.unnamedPulls), String(tail.unnamedUses),
            ]
        }
        arguments += part.tailNames.map(ShardLayout.field)
        return arguments.map { Array($0.utf8) } + (usageBitmap.map { [$0] } ?? [])
    }

    /// `bits` as the bitmap `SETBIT` leaves (bit k is the bit 0x80 >> k % 8 of byte k / 8, no
    /// trailing zero bytes) when there are at least 1/512 as many as the usage filter holds (160
    /// for the default sketch); nil below. A `SETBIT` from the script costs Redis about 0.4 µs, a
    /// `BITOP` of the default filter's 10 KiB about 12 µs: below the line the indexes cost Redis
    /// under 0.1 ms a part and take a fraction of the bitmap's bytes.
    private static func usageBitmap(_ bits: [UInt32], _ parameters: SketchParameters) -> [UInt8]? {
        guard let highest = bits.max(), bits.count >= UsageFilter.byteCount(parameters) * 8 / 512 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(highest) / 8 + 1)
        for bit in bits { bytes[Int(bit) / 8] |= 0x80 >> (bit % 8) }
        return bytes
    }

    /// A time as the scripts take it: milliseconds, or "" for none (`.distantPast`).
    private static func milliseconds(_ time: Timestamp) -> String {
        time == .distantPast ? "" : String(time.millisecondsSinceEpoch)
    }
}
