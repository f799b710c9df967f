import PullSketchCore

/// The Redis keys of one shard. Every key carries the hash tag `{ps:<shard>}`, so a shard's keys
/// share a Redis Cluster slot and one script can change them atomically.
///
/// - live batch (`BatchKeys`): hashes keyed by `t|repository|tag` or `m|repository|digest` —
///   `…:live:fetches`, `…:live:checks`, `…:live:pulls`, `…:live:pulled` and `…:live:used` (last
///   pulled and last used, ms), `…:live:digest` (`<ms> <digest>`); `…:live:sketch` (u32 cells,
///   big-endian, as BITFIELD writes them); `…:live:usage` (the usage filter's bits, as SETBIT
///   writes them); `…:live:tail` (hash: `mass`, `pulled`, `used`, `overflow`, and after sealing
///   `fingerprint` and `sealed`, the seal time in ms); `…:live:tailpulls`, `…:live:tailpulled`,
///   `…:live:tailused`, `…:live:tailunnamed`, `…:live:tailunnameduses` (hashes keyed by
///   repository; `tailunnamed` holds the tail pulls of keys without a name, `tail`'s field
///   `unnamed` those of repositories lost to an overflow, `tailunnameduses` the uses of keys
///   without a name); `…:live:names` (set of the tail keys' fields, as the hot hashes key them);
///   `…:live:members` (node id → `<first> <last>`, the window sequences of that node merged into
///   the batch);
/// - sealed batch n: the same names with `batch:<n>` instead of `live`, listed in `…:sealed`;
/// - outside the batches: `…:fingerprint` (the live batch's sketch parameters, moved into the
///   batch when it is sealed), `…:ledger` (node id → last applied window sequence),
///   `…:ledger:touched` (node id → last merge, ms), `…:confirmed` (node id → the last window
///   sequence PostgreSQL holds), `…:sealseq` (the last batch number), `…:lease` (the
///   reconciler working the shard, with an expiry) and `…:merge:usage` (a merge's usage bits as a
///   bitmap, written and deleted within the merge script).
public struct ShardLayout: Hashable, Sendable {
    public let shard: Int

    public init(shard: Int) {
        self.shard = shard
    }

    var prefix: String { "{ps:\(shard)}" }

    var live: BatchKeys { BatchKeys(prefix: "\(prefix):live") }

    func batch(_ number: String) -> BatchKeys { BatchKeys(prefix: "\(prefix):batch:\(number)") }

    var fingerprint: String { "\(prefix):fingerprint" }
    var ledger: String { "\(prefix):ledger" }
    var ledgerTouched: String { "\(prefix):ledger:touched" }
    var confirmed: String { "\(prefix):confirmed" }
    var sealSequence: String { "\(prefix):sealseq" }
    var sealed: String { "\(prefix):sealed" }
    var lease: String { "\(prefix):lease" }
    var mergeUsage: String { "\(prefix):merge:usage" }

    /// The hash field of a key in the batch hashes, `t|repository|tag` or `m|repository|digest`;
    /// `|` cannot occur in OCI names.
    static func field(_ key: PullKey) -> String {
        "\(key.kind == .tag ? "t" : "m")|\(key.repository.value)|\(key.name)"
    }

    /// The key of a hash field; nil when the field is not one `field(_:)` writes.
    static func key(field: String) -> PullKey? {
        // Split at the first two `|` by bytes (an ASCII byte never occurs inside a longer character).
        let utf8 = field.utf8, separator = UInt8(ascii: "|")
        guard let first = utf8.firstIndex(of: separator),
            let second = utf8[utf8.index(after: first)...].firstIndex(of: separator)
        else { return nil }
        let kind: KeyKind
        switch field[..<first] {
        case "t": kind = .tag
        case "m": kind = .manifest
        default: return nil
        }
        return try? PullKey(kind: kind, repository: String(field[utf8.index(after: first)..<second]), reference: String(field[utf8.index(after: second)...]))
    }
}

/// The keys of one batch, live or sealed, by name.
struct BatchKeys: Hashable, Sendable {
    let fetches, checks, pulls, lastPulled, lastUsed, digest: String
    let sketch, usage: String
    let tail, tailPulls, tailLastPulled, tailLastUsed, tailUnnamed, tailUnnamedUses, names: String
    let members: String

    init(prefix: String) {
        fetches = "\(prefix):fetches"
        checks = "\(prefix):checks"
        pulls = "\(prefix):pulls"
        lastPulled = "\(prefix):pulled"
        lastUsed = "\(prefix):used"
        digest = "\(prefix):digest"
        sketch = "\(prefix):sketch"
        usage = "\(prefix):usage"
        tail = "\(prefix):tail"
        tailPulls = "\(prefix):tailpulls"
        tailLastPulled = "\(prefix):tailpulled"
        tailLastUsed = "\(prefix):tailused"
        tailUnnamed = "\(prefix):tailunnamed"
        tailUnnamedUses = "\(prefix):tailunnameduses"
        names = "\(prefix):names"
        members = "\(prefix):members"
    }

    /// Every key with its name in the layout (`pulls`, `sketch`, …).
    var named: [(name: String, key: String)] {
        all.map { (String($0[$0.index(after: $0.lastIndex(of: ":")!)...]), $0) }
    }

    /// Every key, in the order the scripts name them (`BatchScripts.batchKeyNames`).
    var all: [String] {
        [
            fetches, checks, pulls, lastPulled, lastUsed, digest, sketch, usage, tail, tailPulls, tailLastPulled, tailLastUsed, tailUnnamed,
            tailUnnamedUses, names, members,
        ]
    }
}
