public import PullSketchPostgres

/// The operator's view of a deployment's accuracy, read from the statistics tables: how many rows are exact
/// or approximate, how large errors are relative to counts, and the widest bounds.
public struct DeploymentAccuracy: Sendable {
    public struct Table: Sendable {
        public var rows: Int
        public var exact: Int
        /// Percentiles (p50, p90, p99, max) of `pull_count_error / pull_count` over approximate rows.
        public var relativeError: [Double]
    }

    public struct WideBound: Sendable {
        public var kind: String
        public var repository: String
        public var key: String
        public var count: Int64
        public var error: Int64
    }

    public var tags: Table
    public var manifests: Table
    public var widest: [WideBound]
    public var reconciledBatches: Int

    public init(_ connection: PostgresConnection, widest limit: Int = 10) throws {
        func table(_ name: String) throws -> Table {
            let row = try connection.query(
                """
                SELECT count(*) AS rows, count(*) FILTER (WHERE pull_count_error = 0) AS exact,
                    percentile_cont(ARRAY[0.5, 0.9, 0.99, 1.0]) WITHIN GROUP (ORDER BY pull_count_error::float8 / pull_count)
                        FILTER (WHERE pull_count_error > 0 AND pull_count > 0) AS percentiles
                FROM \(name) WHERE \(StatisticsQueries.holdsStatistics("\(name)"))
                """
            ).namedRows[0]
            let percentiles = try row.decode("percentiles", as: String?.self) ?? "{}"
            return Table(
                rows: try row.decode("rows"), exact: try row.decode("exact"),
                relativeError: percentiles.dropFirst().dropLast().split(separator: ",").compactMap { Double($0) }
            )
        }
        tags = try table("tag_stats")
        manifests = try table("manifest_stats")
        widest = try connection.query(
            """
            SELECT kind, name, key, pull_count, pull_count_error FROM (
                SELECT 'tag' AS kind, r.name, s.tag AS key, s.pull_count, s.pull_count_error
                FROM tag_stats s JOIN repositories r ON r.id = s.repository_id WHERE s.pull_count_error > 0
                UNION ALL
                SELECT 'manifest', r.name, s.digest, s.pull_count, s.pull_count_error
                FROM manifest_stats s JOIN repositories r ON r.id = s.repository_id WHERE s.pull_count_error > 0
            ) w ORDER BY pull_count_error DESC, name, key LIMIT $1
            """,
            [String(limit)]
        ).namedRows.map { row in
            WideBound(
                kind: try row.decode("kind"), repository: try row.decode("name"), key: try row.decode("key"),
                count: try row.decode("pull_count"), error: try row.decode("pull_count_error")
            )
        }
        reconciledBatches = try connection.query("SELECT count(*) AS batches FROM reconciled_batches").namedRows[0].decode("batches")
    }
}
