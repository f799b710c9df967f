import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchSync
import PullSketchTestSupport
import Testing

/// `QuayCatalogSync` against Quay's tables (the columns it reads, as Quay's migrations create
/// them) with a tag history: retargets, deletions, a future expiry, a hidden tag.
@Suite(.postgresServer) struct QuayCatalogSyncTests {
    static let day: Int64 = 86_400_000
    static let now = Timestamp.now().millisecondsSinceEpoch

    static func digest(_ n: Int) -> String { "sha256:" + String(format: "%064x", n) }

    /// Quay's database: namespace `acme` with `web` (tags v0…v(tags−1), each pushed `tags − i`
    /// days ago, every fifth retargeted yesterday, every seventh deleted) and `legacy` (a hidden
    /// tag, a tag expiring tomorrow).
    static func quayDatabase(tags: Int) throws -> String {
        let database = try PostgresServer.current!.makeDatabase()
        let connection = try PostgresConnection(database)
        try connection.execute(script: QuayTagTables.schema)
        try connection.execute(script: """
            INSERT INTO "user" (id, username) VALUES (1, 'acme');
            INSERT INTO repository (id, namespace_user_id, name) VALUES (1, 1, 'web'), (2, 1, 'legacy');
            """)
        let day = Self.day, now = Self.now
        try connection.execute(script: """
            INSERT INTO manifest (repository_id, digest) SELECT 1, 'sha256:' || lpad(to_hex(n), 64, '0') FROM generate_series(0, \(2 * tags)) n;
            INSERT INTO manifest (repository_id, digest) VALUES (2, '\(digest(1))');
            -- v<i> pushed (tags − i) days ago onto manifest i; ended yesterday for every fifth (retargeted) and seventh (deleted).
            INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms)
                SELECT 'v' || i, 1, i + 1, \(now) - (\(tags) - i) * \(day)::bigint,
                    CASE WHEN i % 5 = 0 OR i % 7 = 0 THEN \(now) - \(day) END
                FROM generate_series(0, \(tags - 1)) i;
            INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms)
                SELECT 'v' || i, 1, \(tags) + i + 1, \(now) - \(day) FROM generate_series(0, \(tags - 1)) i WHERE i % 5 = 0 AND i % 7 <> 0;
            INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms, hidden) VALUES
                ('$temp-1', 2, (SELECT id FROM manifest WHERE repository_id = 2), \(now), NULL, true),
                ('expiring', 2, (SELECT id FROM manifest WHERE repository_id = 2), \(now - 400 * day), \(now + day), false);
            """)
        return database
    }

    /// What the catalog must hold: repository/tag → (digest, push time ms).
    static func expected(tags: Int) -> [String: (digest: String, pushed: Int64)] {
        var result: [String: (String, Int64)] = ["acme/legacy/expiring": (digest(1), now - 400 * day)]
        for i in 0..<tags where i % 7 != 0 {
            result["acme/web/v\(i)"] = i % 5 == 0 ? (digest(tags + i), now - day) : (digest(i), now - Int64(tags - i) * day)
        }
        return result
    }

    static func catalog(_ database: String) throws -> [String: (digest: String, pushed: Int64)] {
        let rows = try PostgresConnection(database).query("""
            SELECT r.name || '/' || c.tag, c.digest, (extract(epoch from c.pushed_at) * 1000)::bigint
            FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id WHERE c.deleted_at IS NULL
            """).rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, ($0[1]!, Int64($0[2]!)!)) })
    }

    func statisticsDatabase() throws -> String {
        let database = try PostgresServer.current!.makeDatabase()
        try Schema.migrate(try PostgresConnection(database))
        return database
    }

    func same(_ a: [String: (digest: String, pushed: Int64)], _ b: [String: (digest: String, pushed: Int64)]) -> Bool {
        a.count == b.count && a.allSatisfy { key, value in b[key].map { $0.digest == value.digest && $0.pushed == value.pushed } ?? false }
    }

    @Test func liveTagsAreSyncedWithTheirPushTimesIdempotentlyAndResumably() async throws {
        let tags = 300
        let quay = try BlockingDatabase(try Self.quayDatabase(tags: tags), connections: 1)
        let statistics = try statisticsDatabase()
        let database = try BlockingDatabase(statistics, connections: 1)
        let checkpoint = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-quay-sync-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: checkpoint) }
        var sync = QuayCatalogSync(quay: quay, database: database, checkpointFile: checkpoint)
        sync.pageSize = 64

        let progress = try await sync.run()
        let expected = Self.expected(tags: tags)
        #expect(progress.tags == expected.count)
        #expect(same(try Self.catalog(statistics), expected), "live, visible tags with their digests and push times")

        // A crash after the first pages: the checkpoint says where; the resumed run does the rest,
        // and runs from any point leave the same catalog.
        try Data(#"{"source":"quay-database","position":"128"}"#.utf8).write(to: checkpoint)
        let resumed = try await sync.run()
        #expect(resumed.tags < expected.count && resumed.tags > 0)
        try FileManager.default.removeItem(at: checkpoint)
        _ = try await sync.run()
        #expect(same(try Self.catalog(statistics), expected))

        // Never-pulled tags pushed long ago are prune candidates by their push time; recent ones are not.
        let candidates = try StatisticsQueries(connection: PostgresConnection(statistics)).pruneCandidates(
            try RepositoryName("acme/web"), policy: PrunePolicy(notPulledDays: 90), now: .now()
        )
        let old = expected.filter { $0.key.hasPrefix("acme/web/") && $0.value.pushed < Self.now - 90 * Self.day }
        #expect(Set(candidates.map { "acme/web/\($0.tag)" }) == Set(old.keys))
        #expect(!old.isEmpty && old.count < expected.count - 1)
    }

    /// `acme/multi:v1` is an image index listing an amd64 and an arm/v7 manifest (Quay's
    /// `manifestchild`); the sync links them with the platforms the index names.
    @Test func theSyncLinksImageIndexesToTheirPlatformManifests() async throws {
        let database = try PostgresServer.current!.makeDatabase()
        let connection = try PostgresConnection(database)
        try connection.execute(script: QuayTagTables.schema)
        let index = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"\#(Self.digest(2))","platform":{"os":"linux","architecture":"amd64"}},{"digest":"\#(Self.digest(3))","platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#
        try connection.execute(script: """
            INSERT INTO "user" (id, username) VALUES (1, 'acme');
            INSERT INTO repository (id, namespace_user_id, name) VALUES (1, 1, 'multi');
            """)
        try connection.query("INSERT INTO manifest (id, repository_id, digest, manifest_bytes) VALUES (1, 1, $1, $2), (2, 1, $3, '{}'), (3, 1, $4, '{}')",
                             [Self.digest(1), index, Self.digest(2), Self.digest(3)])
        try connection.execute(script: """
            INSERT INTO manifestchild (repository_id, manifest_id, child_manifest_id) VALUES (1, 1, 2), (1, 1, 3);
            INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms) VALUES ('v1', 1, 1, \(Self.now));
            """)
        let statistics = try statisticsDatabase()
        _ = try await QuayCatalogSync(quay: try BlockingDatabase(database, connections: 1), database: try BlockingDatabase(statistics, connections: 1), checkpointFile: nil).run()
        let platforms = try StatisticsQueries(connection: PostgresConnection(statistics)).platforms(try RepositoryName("acme/multi"), index: try Digest(Self.digest(1)))
        #expect(platforms.map(\.statistics.digest) == [Self.digest(2), Self.digest(3)])
        #expect(platforms.map(\.platform) == ["linux/amd64", "linux/arm/v7"])
    }
}
