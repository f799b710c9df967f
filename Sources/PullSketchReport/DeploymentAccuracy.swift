public import PullSketchPostgres

/// The operator's view of a live deployment's accuracy, from PostgreSQL: how many rows are exact
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
                SELECT count(*), count(*) FILTER (WHERE pull_count_error = 0),
                    percentile_cont(ARRAY[0.5, 0.9, 0.99, 1.0]) WITHIN GROUP (ORDER BY pull_count_error::float8 / pull_count)
                        FILTER (WHERE pull_count_error > 0 AND pull_count > 0)
                FROM \(name)
                """
            ).rows[0]
            let percentiles = (row[2] ?? "{}").trimmingCharacters(in: ["{", "}"]).split(separator: ",").compactMap { Double($0) }
            return Table(rows: Int(row[0] ?? "0") ?? 0, exact: Int(row[1] ?? "0") ?? 0, relativeError: percentiles)
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
        ).rows.map { row in
            WideBound(kind: row[0] ?? "", repository: row[1] ?? "", key: row[2] ?? "", count: Int64(row[3] ?? "0") ?? 0, error: Int64(row[4] ?? "0") ?? 0)
        }
        reconciledBatches = Int(try connection.query("SELECT count(*) FROM reconciled_batches").rows[0][0] ?? "0") ?? 0
    }

    public func markdown() -> String {
        func line(_ name: String, _ table: Table) -> String {
            let share = table.rows == 0 ? 100 : 100 * Double(table.exact) / Double(table.rows)
            let errors = table.relativeError.isEmpty ? "—" : table.relativeError.map { String(format: "%.4f", $0) }.joined(separator: " / ")
            return "| \(name) | \(table.rows) | \(table.exact) (\(String(format: "%.2f", share)) %) | \(table.rows - table.exact) | \(errors) |"
        }
        var text = """
            | statistics rows | rows | exact | approximate | error ÷ count of approximate rows: p50 / p90 / p99 / max |
            |---|---:|---:|---:|---|
            \(line("tags", tags))
            \(line("manifests", manifests))

            Ledger: \(reconciledBatches) reconciled batches kept.
            """
        if !widest.isEmpty {
            text += "\n\n| widest bounds | key | count | error |\n|---|---|---:|---:|\n"
            text += widest.map { "| \($0.kind) | \($0.repository) \($0.key) | \($0.count) | \($0.error) |" }.joined(separator: "\n")
        }
        return text
    }
}
