import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchReport
import PullSketchTestSupport
import Testing

@Suite(.postgresServer) struct DeploymentAccuracyTests {
    @Test func countsExactAndApproximateRowsAndListsTheWidestBounds() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        try connection.execute(script: """
            INSERT INTO repositories (name) VALUES ('team/app');
            INSERT INTO tag_stats (repository_id, tag, pull_count, pull_count_error)
                SELECT id, 'v' || n, 100, CASE WHEN n < 2 THEN n * 10 + 5 ELSE 0 END FROM repositories, generate_series(0, 3) n;
            INSERT INTO manifest_stats (repository_id, digest, pull_count, pull_count_error) SELECT id, 'sha256:x', 50, 0 FROM repositories;
            """)
        // A manifest pushed and never used has a statistics row with zeros: no row of statistics.
        try Catalog(connection: connection).apply({
            var batch = CatalogBatch()
            batch.pushManifest(try RepositoryName("team/app"), try Digest("sha256:" + String(repeating: "a", count: 64)), at: .init(millisecondsSinceEpoch: 0))
            return batch
        }())
        #expect(try StatisticsQueries(connection: connection).allRows(.manifest).map(\.reference) == ["sha256:x"])
        let report = try DeploymentAccuracy(connection, widest: 1)
        #expect(report.tags.rows == 4 && report.tags.exact == 2)
        #expect(report.tags.relativeError.last == 0.15, "v1: 15 of 100")
        #expect(report.manifests.rows == 1 && report.manifests.exact == 1 && report.manifests.relativeError.isEmpty)
        #expect(report.widest.map(\.key) == ["v1"])
        #expect(report.markdown().contains("| tags | 4 | 2 (50.00 %) | 2 |"))
    }
}
