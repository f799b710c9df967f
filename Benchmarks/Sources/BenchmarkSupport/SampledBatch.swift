public import PullSketchCore
public import PullSketchPostgres

/// A sealed batch of one GET by tag, at `time`, for each of `pulls` tags drawn at random from a
/// loaded database: `sampleRows` answers `SELECT repository, tag, digest` (the tag's manifest),
/// `pulls` rows at most. One shard, every key exact.
public func sampledBatch(number: Int64, _ sampleRows: String, from connection: PostgresConnection, pulls: Int, time: Timestamp) throws -> SealedBatch {
    let tracker = PullTracker(
        configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 2 * pulls, stripeCount: 1, shardCount: 1)
    )
    for row in try connection.query(sampleRows).rows {
        tracker.record(PullEvent(
            repository: try RepositoryName(row[0]!), reference: .tag(try TagName(row[1]!)), method: .get,
            servedDigest: try Digest(row[2]!), time: time
        ))
    }
    let window = tracker.drain()
    return SealedBatch(number: number, parameters: window.parameters, content: window.shards[0])
}
