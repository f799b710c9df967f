import PullSketchCore

/// Reads one sealed batch's keys in chunks and turns them back into a `ShardWindow`, refusing
/// anything PullSketch would not have written.
struct BatchReader {
    let connection: RedisConnection
    /// The batch's keys, in `ShardLayout.batchParts` order.
    let keys: [String]

    /// Hash entries fetched per HSCAN call, and sketch bytes per GETRANGE call.
    private let scanCount = 1_000
    private let sketchChunkBytes = 64 * 1_024

    /// The batch, or nil when it no longer exists (every sealed batch has a tail hash).
    func read(shard: Int, number: Int64) throws -> SealedBatch? {
        let tail = try hash(keys[5])
        guard !tail.isEmpty else { return nil }
        let parameters = try tail["fingerprint"].map { text in
            guard let parameters = SketchParameters(fingerprint: text) else {
                throw BatchStoreError(.malformed, "\(keys[5]) has fingerprint '\(text)'")
            }
            return parameters
        }
        var content = ShardWindow(shard: shard)
        content.hotEntries = try hotEntries()
        content.sketchCells = try sketchCells(parameters)
        content.tailMass = try tail["mass"].map { try unsigned($0, keys[5], "mass") } ?? 0
        content.tailLastPulled = try tail["last"].map { try time($0, keys[5], "last") } ?? .distantPast
        content.tailRepositoriesOverflowed = tail["overflow"] == "1"
        let tailSeen = try hash(keys[7])
        content.tailRepositories = try hash(keys[6]).map { name, pulls in
            guard let repository = try? RepositoryName(name) else {
                throw BatchStoreError(.malformed, "\(keys[6]) has field '\(name)', not a repository")
            }
            guard let seen = tailSeen[name] else { throw BatchStoreError(.malformed, "\(keys[7]) lacks '\(name)'") }
            return TailRepository(repository: repository, pulls: try unsigned(pulls, keys[6], name), lastPulled: try time(seen, keys[7], name))
        }
        .sorted { $0.repository.value < $1.repository.value }
        if !content.sketchCells.isEmpty, parameters == nil {
            throw BatchStoreError(.malformed, "\(keys[4]) has cells but the batch has no fingerprint")
        }
        guard let sealed = tail["sealed"] else { throw BatchStoreError(.malformed, "\(keys[5]) lacks its seal time") }
        return SealedBatch(number: number, parameters: parameters, content: content, sealedAt: try time(sealed, keys[5], "sealed"))
    }

    private func hotEntries() throws -> [HotEntry] {
        let fetches = try hash(keys[0])
        let checks = try hash(keys[1])
        let digests = try hash(keys[3])
        return try hash(keys[2]).map { field, seen in
            var entry = try Self.entry(field: field, key: keys[2])
            entry.fetches = try fetches[field].map { try unsigned($0, keys[0], field) } ?? 0
            entry.checks = try checks[field].map { try unsigned($0, keys[1], field) } ?? 0
            entry.lastSeen = try time(seen, keys[2], field)
            if let digest = digests[field] {
                let parts = digest.split(separator: " ", maxSplits: 1)
                guard parts.count == 2, let at = Int64(parts[0]), let value = try? Digest(String(parts[1])) else {
                    throw BatchStoreError(.malformed, "\(keys[3]) has '\(digest)' for '\(field)'")
                }
                entry.currentDigest = value
                entry.currentDigestAt = Timestamp(millisecondsSinceEpoch: at)
            }
            return entry
        }
    }

    /// A hot entry with no counts yet from a field `t|repository|tag` or `m|repository|digest`.
    private static func entry(field: String, key: String) throws -> HotEntry {
        let parts = field.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let repository = try? RepositoryName(String(parts[1])) else {
            throw BatchStoreError(.malformed, "\(key) has field '\(field)', not a key")
        }
        let reference = String(parts[2])
        switch parts[0] {
        case "t" where (try? TagName(reference)) != nil:
            return HotEntry(kind: .tag, repository: repository, reference: reference, lastSeen: .distantPast)
        case "m" where (try? Digest(reference)) != nil:
            return HotEntry(kind: .manifest, repository: repository, reference: reference, lastSeen: .distantPast)
        default:
            throw BatchStoreError(.malformed, "\(key) has field '\(field)', not a key")
        }
    }

    private func sketchCells(_ parameters: SketchParameters?) throws -> [SketchCell] {
        let key = keys[4]
        guard case .integer(let length) = try connection.command(["STRLEN", key]) else {
            throw BatchStoreError(.malformed, "STRLEN \(key) did not answer a number")
        }
        guard length > 0 else { return [] }
        let expected = Int64(parameters?.byteCount ?? 0)
        guard length % 4 == 0, length <= expected else {
            throw BatchStoreError(.malformed, "\(key) is \(length) bytes: not whole u32 cells of a \(parameters?.description ?? "known") sketch")
        }
        var cells: [SketchCell] = []
        var offset: Int64 = 0
        while offset < length {
            let end = min(offset + Int64(sketchChunkBytes), length) - 1
            guard case .bulk(let bytes) = try connection.command(["GETRANGE", key, String(offset), String(end)]),
                Int64(bytes.count) == end - offset + 1
            else { throw BatchStoreError(.malformed, "\(key) changed while it was read") }
            for cellStart in stride(from: 0, to: bytes.count, by: 4) {
                let count = bytes[cellStart..<cellStart + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                if count != 0 {
                    cells.append(SketchCell(index: UInt32((offset + Int64(cellStart)) / 4), count: count))
                }
            }
            offset = end + 1
        }
        return cells
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

    private func unsigned(_ text: String, _ key: String, _ field: String) throws -> UInt64 {
        guard let value = UInt64(text) else { throw BatchStoreError(.malformed, "\(key) has '\(text)' for '\(field)'") }
        return value
    }

    private func time(_ text: String, _ key: String, _ field: String) throws -> Timestamp {
        guard let value = Int64(text) else { throw BatchStoreError(.malformed, "\(key) has '\(text)' for '\(field)'") }
        return Timestamp(millisecondsSinceEpoch: value)
    }
}
