import Foundation
import PullSketchCore

/// Reads one sealed batch's keys in chunks and turns them back into a `ShardWindow`, refusing
/// anything PullSketch would not have written.
struct BatchReader {
    let connection: any RedisCommands
    let keys: BatchKeys
    /// The reader's shard count; a batch merged under another is refused.
    let shardCount: Int

    /// Hash entries fetched per HSCAN call, and string bytes per GETRANGE call.
    private let scanCount = 1_000
    private let chunkBytes = 64 * 1_024

    /// The batch, or nil when it no longer exists (every sealed batch has a tail hash).
    func read(shard: Int, number: Int64) throws -> SealedBatch? {
        let tail = try hash(keys.tail)
        guard !tail.isEmpty else { return nil }
        let parameters = try tail["fingerprint"].map { stamp in
            // `<sketch fingerprint>:n<shard count>`; batches sealed before the shard count was
            // stamped have the sketch fingerprint alone.
            var text = Substring(stamp)
            if let separator = text.lastIndex(of: ":"), text[text.index(after: separator)...].first == "n" {
                guard let merged = Int(text[text.index(separator, offsetBy: 2)...]) else {
                    throw BatchStoreError(.malformed, "\(keys.tail) has fingerprint '\(stamp)'")
                }
                guard merged == shardCount else {
                    throw BatchStoreError(
                        .sketchMismatch,
                        "\(keys.tail) was merged by processes with \(merged) shards; this one runs with \(shardCount): run every node and reconciler with one shard count"
                    )
                }
                text = text[..<separator]
            }
            guard let parameters = SketchParameters(fingerprint: String(text)) else {
                throw BatchStoreError(.malformed, "\(keys.tail) has fingerprint '\(stamp)'")
            }
            guard parameters.formatVersion == SketchParameters.currentFormatVersion else {
                throw BatchStoreError(
                    .malformed,
                    "\(keys.tail) was written in format v\(parameters.formatVersion); this reconciler reads v\(SketchParameters.currentFormatVersion)"
                )
            }
            return parameters
        }
        var content = ShardWindow(shard: shard)
        content.hotEntries = try hotEntries()
        let (sketch, usage) = try tailSketch(parameters)
        content.sketchCells = sketch
        content.usageBits = usage
        content.tailMass = try tail["mass"].map { try unsigned($0, keys.tail, "mass") } ?? 0
        content.tailLastPulled = try tail["pulled"].map { try time($0, keys.tail, "pulled") } ?? .distantPast
        content.tailLastUsed = try tail["used"].map { try time($0, keys.tail, "used") } ?? .distantPast
        content.tailRepositoriesOverflowed = tail["overflow"] == "1"
        content.unnamedPullsOfOverflow = try tail["unnamed"].map { try unsigned($0, keys.tail, "unnamed") } ?? 0
        // SSCAN may return a member twice: sorted, a repeated key follows itself and is dropped.
        content.tailNames = try members(keys.names).map { field in
            guard let key = ShardLayout.key(field: field) else {
                throw BatchStoreError(.malformed, "\(keys.names) has '\(field)', not a key")
            }
            return key
        }
        .sortedByName()
        .reduce(into: []) { names, key in
            if names.last != key { names.append(key) }
        }
        let pulls = try hash(keys.tailPulls)
        let pulled = try hash(keys.tailLastPulled)
        let unnamed = try hash(keys.tailUnnamed)
        let unnamedUses = try hash(keys.tailUnnamedUses)
        content.tailRepositories = try hash(keys.tailLastUsed).map { name, used in
            guard let repository = try? RepositoryName(name) else {
                throw BatchStoreError(.malformed, "\(keys.tailLastUsed) has field '\(name)', not a repository")
            }
            return TailRepository(
                repository: repository,
                pulls: try pulls[name].map { try unsigned($0, keys.tailPulls, name) } ?? 0,
                lastPulled: try pulled[name].map { try time($0, keys.tailLastPulled, name) } ?? .distantPast,
                lastUsed: try time(used, keys.tailLastUsed, name),
                unnamedPulls: try unnamed[name].map { try unsigned($0, keys.tailUnnamed, name) } ?? 0,
                unnamedUses: try unnamedUses[name].map { try unsigned($0, keys.tailUnnamedUses, name) } ?? 0
            )
        }
        .sorted { $0.repository.value < $1.repository.value }
        guard let sealed = tail["sealed"] else { throw BatchStoreError(.malformed, "\(keys.tail) lacks its seal time") }
        return SealedBatch(
            number: number, parameters: parameters, content: content, sealedAt: try time(sealed, keys.tail, "sealed"), windows: try windows()
        )
    }

    /// The node windows merged into the batch, from `…:members` (`<first> <last>` per node).
    private func windows() throws -> [String: ClosedRange<UInt64>] {
        try hash(keys.members).mapValues { span in
            let bounds = span.split(separator: " ").compactMap { UInt64($0) }
            guard bounds.count == 2, bounds[0] > 0, bounds[0] <= bounds[1] else {
                throw BatchStoreError(.malformed, "\(keys.members) has '\(span)', not two window sequences")
            }
            return bounds[0]...bounds[1]
        }
    }

    /// Every key of the batch as it is (`BatchStore.rawBatch`).
    func raw(stringLimit: Int) throws -> [UInt8] {
        var object: [String: Any] = [:]
        for (name, key) in keys.named {
            guard case .status(let type) = try connection.command(["TYPE", key]) else {
                throw BatchStoreError(.malformed, "TYPE \(key) did not answer a type")
            }
            switch type {
            case "none": continue
            case "hash": object[name] = try hash(key)
            case "set": object[name] = try members(key).sorted()
            case "string":
                guard case .integer(let length) = try connection.command(["STRLEN", key]) else { continue }
                object[name] = length <= stringLimit
                    ? Data(try string(key, wholeUnitsOf: 1, atMost: stringLimit, nil)).base64EncodedString()
                    : ["bytes": length]
            default: object[name] = ["type": type]
            }
        }
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// Every key of the batch has a last-used time; the other hashes hold only what is not zero.
    private func hotEntries() throws -> [HotEntry] {
        let fetches = try hash(keys.fetches)
        let checks = try hash(keys.checks)
        let pulls = try hash(keys.pulls)
        let pulled = try hash(keys.lastPulled)
        let digests = try hash(keys.digest)
        return try hash(keys.lastUsed).map { field, used in
            guard let key = ShardLayout.key(field: field) else {
                throw BatchStoreError(.malformed, "\(keys.lastUsed) has field '\(field)', not a key")
            }
            var entry = HotEntry(key: key, lastUsed: .distantPast)
            entry.fetches = try fetches[field].map { try unsigned($0, keys.fetches, field) } ?? 0
            entry.checks = try checks[field].map { try unsigned($0, keys.checks, field) } ?? 0
            entry.pulls = try pulls[field].map { try unsigned($0, keys.pulls, field) } ?? 0
            entry.lastPulled = try pulled[field].map { try time($0, keys.lastPulled, field) } ?? .distantPast
            entry.lastUsed = try time(used, keys.lastUsed, field)
            if let digest = digests[field] {
                let parts = digest.split(separator: " ", maxSplits: 1)
                guard parts.count == 2, let at = Int64(parts[0]), let value = try? Digest(String(parts[1])) else {
                    throw BatchStoreError(.malformed, "\(keys.digest) has '\(digest)' for '\(field)'")
                }
                entry.currentDigest = value
                entry.currentDigestAt = Timestamp(millisecondsSinceEpoch: at)
            }
            return entry
        }
    }

    /// The tail sketch's non-zero cells and the usage filter's set bits.
    private func tailSketch(_ parameters: SketchParameters?) throws -> ([SketchCell], [UInt32]) {
        let sketchBytes = try string(keys.sketch, wholeUnitsOf: 4, atMost: parameters?.byteCount ?? 0, parameters)
        var cells: [SketchCell] = []
        for start in stride(from: 0, to: sketchBytes.count, by: 4) {
            let count = sketchBytes[start..<start + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            if count != 0 { cells.append(SketchCell(index: UInt32(start / 4), count: count)) }
        }
        let usageBytes = try string(keys.usage, wholeUnitsOf: 1, atMost: parameters.map(UsageFilter.byteCount) ?? 0, parameters)
        var bits: [UInt32] = []
        for (index, byte) in usageBytes.enumerated() where byte != 0 {
            // SETBIT numbers bits from the most significant bit of each byte.
            for bit in 0..<8 where byte & (0x80 >> bit) != 0 { bits.append(UInt32(index * 8 + bit)) }
        }
        if let parameters, let bad = bits.first(where: { Int($0) >= parameters.width * parameters.depth }) {
            throw BatchStoreError(.malformed, "\(keys.usage) has bit \(bad), outside a \(parameters) sketch")
        }
        return (cells, bits)
    }

    /// A string key's bytes, read in chunks, refused unless its length is a multiple of `unit` and
    /// at most `limit` (a batch with cells but no fingerprint has limit 0).
    private func string(_ key: String, wholeUnitsOf unit: Int64, atMost limit: Int, _ parameters: SketchParameters?) throws -> [UInt8] {
        guard case .integer(let length) = try connection.command(["STRLEN", key]) else {
            throw BatchStoreError(.malformed, "STRLEN \(key) did not answer a number")
        }
        guard length > 0 else { return [] }
        guard length % unit == 0, length <= Int64(limit) else {
            throw BatchStoreError(.malformed, "\(key) is \(length) bytes: more than a \(parameters?.description ?? "known") sketch holds")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(length))
        while bytes.count < length {
            let end = min(Int64(bytes.count + chunkBytes), length) - 1
            guard case .bulk(let chunk) = try connection.command(["GETRANGE", key, String(bytes.count), String(end)]),
                Int64(chunk.count) == end - Int64(bytes.count) + 1
            else { throw BatchStoreError(.malformed, "\(key) changed while it was read") }
            bytes += chunk
        }
        return bytes
    }

    /// Every field of a hash, read with HSCAN so a large batch never blocks Redis.
    private func hash(_ key: String) throws -> [String: String] {
        var fields: [String: String] = [:]
        var cursor = "0"
        repeat {
            let reply = try connection.command(["HSCAN", key, cursor, "COUNT", String(scanCount)])
            guard case .array(let parts) = reply, parts.count == 2, case .bulk(let next) = parts[0],
                case .array(let items) = parts[1], items.count % 2 == 0
            else { throw BatchStoreError(.malformed, "HSCAN \(key) answered \(reply)") }
            for pair in stride(from: 0, to: items.count, by: 2) {
                guard case .bulk(let field) = items[pair], case .bulk(let value) = items[pair + 1] else {
                    throw BatchStoreError(.malformed, "HSCAN \(key) answered \(items[pair])")
                }
                fields[String(decoding: field, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
            }
            cursor = String(decoding: next, as: UTF8.self)
        } while cursor != "0"
        return fields
    }

    /// Every member of a set, read with SSCAN.
    private func members(_ key: String) throws -> [String] {
        var members: [String] = []
        var cursor = "0"
        repeat {
            let reply = try connection.command(["SSCAN", key, cursor, "COUNT", String(scanCount)])
            guard case .array(let parts) = reply, parts.count == 2, case .bulk(let next) = parts[0], case .array(let items) = parts[1] else {
                throw BatchStoreError(.malformed, "SSCAN \(key) answered \(reply)")
            }
            for item in items {
                guard case .bulk(let member) = item else { throw BatchStoreError(.malformed, "SSCAN \(key) answered \(item)") }
                members.append(String(decoding: member, as: UTF8.self))
            }
            cursor = String(decoding: next, as: UTF8.self)
        } while cursor != "0"
        return members
    }

    private func unsigned(_ text: String, _ key: String, _ field: String) throws -> UInt64 {
        guard let value = UInt64(text) else { throw BatchStoreError(.malformed, "\(key) has '\(text)' for '\(field)'") }
        return value
    }

    private func time(_ text: String, _ key: String, _ field: String) throws -> Timestamp {
        guard let value = Int64(text) else { throw BatchStoreError(.malformed, "\(key) has '\(text)' for '\(field)'") }
        return Timestamp(millisecondsSinceEpoch: value)
    }
}
