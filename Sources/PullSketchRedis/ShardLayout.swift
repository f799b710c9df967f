import PullSketchCore

/// The Redis keys of one shard. Every key carries the hash tag `{ps:<shard>}`, so a shard's keys
/// share a Redis Cluster slot and one script can change them atomically.
///
/// - live batch: `…:live:fetches`, `…:live:checks`, `…:live:seen`, `…:live:digest` (hashes keyed
///   by `t|repository|tag` or `m|repository|digest`), `…:live:sketch` (u32 cells, big-endian, as
///   BITFIELD writes them), `…:live:tail` (hash: `mass`, `last`, `overflow`, and after sealing
///   `fingerprint` and `sealed`, the seal time in ms), `…:live:tailpulls` and `…:live:tailseen`
///   (hashes keyed by repository);
/// - sealed batch n: the same names with `batch:<n>` instead of `live`, listed in `…:sealed`;
/// - outside the batches: `…:fingerprint` (the shard's sketch parameters), `…:ledger` (node id →
///   last applied window sequence), `…:ledger:touched` (node id → last merge, ms), `…:sealseq`
///   (the last batch number) and `…:lease` (the reconciler working the shard, with an expiry).
public struct ShardLayout: Hashable, Sendable {
    public let shard: Int

    public init(shard: Int) {
        self.shard = shard
    }

    /// The parts of a batch, in the order the scripts take them.
    static let batchParts = ["fetches", "checks", "seen", "digest", "sketch", "tail", "tailpulls", "tailseen"]

    var prefix: String { "{ps:\(shard)}" }

    var liveKeys: [String] { Self.batchParts.map { "\(prefix):live:\($0)" } }

    func batchKeys(_ batch: String) -> [String] { Self.batchParts.map { "\(prefix):batch:\(batch):\($0)" } }

    var fingerprint: String { "\(prefix):fingerprint" }
    var ledger: String { "\(prefix):ledger" }
    var ledgerTouched: String { "\(prefix):ledger:touched" }
    var sealSequence: String { "\(prefix):sealseq" }
    var sealed: String { "\(prefix):sealed" }
    var lease: String { "\(prefix):lease" }

    /// The hash field of a key in the batch hashes; `|` cannot occur in OCI names.
    static func field(kind: KeyKind, repository: String, reference: String) -> String {
        "\(kind == .tag ? "t" : "m")|\(repository)|\(reference)"
    }
}
