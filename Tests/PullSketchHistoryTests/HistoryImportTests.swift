import Foundation
import PullSketchCore
import PullSketchHistory
import PullSketchPostgres
import PullSketchReconciler
import PullSketchRedis
import PullSketchStore
import PullSketchTestSupport
import Testing

/// `pullsketch import` of Quay's audit log: a real PostgreSQL holding Quay's tables (the columns
/// the import reads), a real Redis and the reconciler, with a synthetic history of retags.
@Suite(.postgresServer) struct HistoryImportTests {
    static let shardCount = 4
    static let start: Int64 = 1_700_000_000_000
    static let cutover = Timestamp(millisecondsSinceEpoch: start + 30 * 86_400_000)

    static func digest(_ n: Int) -> String { "sha256:" + String(format: "%064x", n) }

    /// Quay's database: `acme/web` and `team/api`, 20 tags each, every tag retagged to a new
    /// manifest halfway through the history; `rows` audit rows: pulls by tag and by digest over
    /// 40 days (the last 10 after the cutover), v1 pulls naming neither, and other kinds.
    /// Returns the database and the truth of every key pulled before the cutover.
    static func quay(rows: Int) throws -> (database: String, truth: [String: StatsRow]) {
        let database = try PostgresServer.current!.makeDatabase()
        let connection = try PostgresConnection(database)
        let halfway = start + 20 * 86_400_000
        try connection.execute(script: QuayTagTables.schema)
        try connection.execute(script: """
            CREATE TABLE logentrykind (id serial PRIMARY KEY, name varchar(255) NOT NULL UNIQUE);
            CREATE TABLE logentry3 (id bigserial PRIMARY KEY, kind_id integer NOT NULL REFERENCES logentrykind (id),
                account_id integer NOT NULL, performer_id integer, repository_id integer, datetime timestamp NOT NULL,
                ip varchar(255), metadata_json text NOT NULL);
            INSERT INTO logentrykind (id, name) VALUES (3, 'push_repo'), (9, 'pull_repo');
            INSERT INTO "user" (id, username) VALUES (1, 'acme'), (2, 'team');
            INSERT INTO repository (id, namespace_user_id, name) VALUES (1, 1, 'web'), (2, 2, 'api');
            -- Manifest n of repository r is digest 100 r + n; tag v<i> points at i until halfway, then at 50 + i.
            INSERT INTO manifest (repository_id, digest)
                SELECT r, 'sha256:' || lpad(to_hex(100 * r + n), 64, '0') FROM generate_series(1, 2) r, generate_series(0, 99) n;
            INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms)
                SELECT 'v' || i, r, (SELECT id FROM manifest WHERE repository_id = r AND digest = 'sha256:' || lpad(to_hex(100 * r + i), 64, '0')),
                    \(start), \(halfway) FROM generate_series(1, 2) r, generate_series(0, 19) i;
            INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms)
                SELECT 'v' || i, r, (SELECT id FROM manifest WHERE repository_id = r AND digest = 'sha256:' || lpad(to_hex(100 * r + 50 + i), 64, '0')),
                    \(halfway) FROM generate_series(1, 2) r, generate_series(0, 19) i;
            """)
        var truth: [String: StatsRow] = [:]
        var generator = SeededGenerator(seed: 41)
        var values: [String] = []
        for row in 0..<rows {
            let repository = Int.random(in: 1...2, using: &generator)
            let name = repository == 1 ? "acme/web" : "team/api"
            let time = start + Int64(row) * (40 * 86_400_000 / Int64(rows))
            let tag = Int.random(in: 0..<20, using: &generator)
            let served = digest(100 * repository + (time < halfway ? tag : 50 + tag))
            let metadata: String
            let kind: Int
            switch Int.random(in: 0..<10, using: &generator) {
            case 0:
                (kind, metadata) = (3, #"{"repo": "x", "namespace": "y", "tag": "v1"}"#)  // a push
            case 1:
                (kind, metadata) = (9, #"{"repo": "\#(name.split(separator: "/")[1])", "namespace": "\#(name.split(separator: "/")[0])"}"#)  // v1
            case 2, 3:
                (kind, metadata) = (9, #"{"repo": "r", "namespace": "n", "manifest_digest": "\#(served)", "user-agent": "containerd"}"#)
                if time < cutover.millisecondsSinceEpoch { truth["manifest|\(name)|\(served)", default: StatsRow()].pull(at: time) }
            default:
                (kind, metadata) = (9, #"{"repo": "r", "namespace": "n", "tag": "v\#(tag)", "user-agent": "docker"}"#)
                if time < cutover.millisecondsSinceEpoch {
                    truth["tag|\(name)|v\(tag)", default: StatsRow()].pull(at: time)
                    truth["manifest|\(name)|\(served)", default: StatsRow()].pull(at: time)
                }
            }
            let stamp = "to_timestamp(\(Double(time) / 1_000)) AT TIME ZONE 'UTC'"
            values.append("(\(kind), 1, \(repository), \(stamp), '\(metadata.replacingOccurrences(of: "'", with: "''"))')")
        }
        for part in stride(from: 0, to: values.count, by: 1_000) {
            try connection.execute(script: """
                INSERT INTO logentry3 (kind_id, account_id, repository_id, datetime, metadata_json)
                VALUES \(values[part..<min(part + 1_000, values.count)].joined(separator: ","));
                """)
        }
        return (database, truth)
    }

    /// The write side: a Redis, a migrated statistics database and a reconciler running passes.
    final class Deployment {
        let redis: RedisServer
        let statistics: String
        let reconciler: Task<Void, any Error>

        init() throws {
            redis = try RedisServer()
            statistics = try PostgresServer.current!.makeDatabase()
            try Schema.migrate(try PostgresConnection(statistics))
            let reconciler = Reconciler(
                redis: RedisEndpoint(port: redis.port), database: statistics, shardCount: HistoryImportTests.shardCount,
                configuration: ReconcilerConfiguration(interval: .milliseconds(100), leaseDuration: .seconds(15))
            )
            self.reconciler = Task { try await reconciler.run() }
        }

        deinit { reconciler.cancel() }

        func importing(_ source: any HistorySource, cutover: Timestamp = HistoryImportTests.cutover) throws -> HistoryImport {
            HistoryImport(
                source: source, redis: RedisEndpoint(port: redis.port), database: try BlockingDatabase(statistics, connections: 1),
                tracker: TrackerConfiguration(shardCount: HistoryImportTests.shardCount), cutover: cutover
            )
        }

        /// Every statistics row, keyed like the truth.
        func rows() throws -> [String: StatsRow] {
            var result: [String: StatsRow] = [:]
            for (table, column, kind) in [("tag_stats", "tag", "tag"), ("manifest_stats", "digest", "manifest")] {
                for row in try PostgresConnection(statistics).query("""
                    SELECT r.name, s.\(column), s.pull_count, s.pull_count_error, (extract(epoch from s.last_pulled_at) * 1000)::bigint
                    FROM \(table) s JOIN repositories r ON r.id = s.repository_id
                    """).rows
                {
                    result["\(kind)|\(row[0]!)|\(row[1]!)"] = StatsRow(count: Int64(row[2]!)!, error: Int64(row[3]!)!, last: Int64(row[4] ?? "") ?? .min)
                }
            }
            return result
        }
    }

    /// A source that fails at one chunk, as a crash mid-import would stop it.
    struct Crashing: HistorySource {
        let source: any HistorySource
        let at: Int
        var identity: String { source.identity }
        var chunkSize: Int { source.chunkSize }
        var chunkCount: Int? { source.chunkCount }

        func chunk(_ index: Int) async throws -> HistoryChunk? {
            guard index < at else { throw ImportError("crash at chunk \(index)") }
            return try await source.chunk(index)
        }
    }

    @Test func aQuayAuditLogIsImportedExactlyOnceAcrossRetagsReRunsAndACrash() async throws {
        let (quayDatabase, truth) = try Self.quay(rows: 12_000)
        let quay = try BlockingDatabase(quayDatabase, connections: 1)
        let source = try await QuayLogSource.open(quay, chunkSize: 1_000)
        #expect(source.chunkCount == 12)
        let deployment = try Deployment()

        // A crash after four chunks, then a full run: what the crashed run sent is not sent again.
        await #expect(throws: ImportError.self) { try await deployment.importing(Crashing(source: source, at: 4)).run() }
        let resumed = try await deployment.importing(source).run()
        #expect(resumed.chunks == 8, "the chunks the crashed run had not sent: \(resumed.line)")
        #expect(resumed.afterCutover > 0 && resumed.ignored > 0)
        #expect(
            try PostgresConnection(deployment.statistics).query("SELECT (extract(epoch from until) * 1000)::bigint FROM pull_knowledge").rows
                == [[String(Self.cutover.millisecondsSinceEpoch)]],
            "the log goes on past the cutover: it reaches it"
        )
        let stored = try deployment.rows()
        #expect(stored.count == truth.count)
        let wrong = truth.filter { stored[$0.key] != $0.value }
        #expect(wrong.isEmpty, "\(wrong.count) keys differ, e.g. \(wrong.prefix(3).map { "\($0.key): \(stored[$0.key].map(\.description) ?? "none") ≠ \($0.value)" })")

        // Imported again: nothing changes.
        let again = try await deployment.importing(source).run()
        #expect(again.pulls == 0 && again.chunks < 12, "nothing sent, and only the chunks past the last one sent read: \(again.line)")
        #expect(try deployment.rows() == stored)
    }

    @Test func auditDocumentsAndPullLinesFromAFileAreImportedOnceWithTheirMethods() async throws {
        let (quayDatabase, _) = try Self.quay(rows: 0)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-import-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        let before = Self.start + 86_400_000, after = Self.start + 25 * 86_400_000
        try Data("""
            {"_source": {"kind_id": 9, "datetime": "2023-11-15T22:13:20", "metadata": {"namespace": "acme", "repo": "web", "tag": "v3"}, "http_method": "HEAD"}}
            {"kind": "pull_repo", "datetime": "Wed, 15 Nov 2023 22:13:20 -0000", "metadata": {"namespace": "acme", "repo": "web", "tag": "v3"}}
            {"kind": "pull_repo", "datetime": \(Double(after) / 1_000), "metadata": {"namespace": "acme", "repo": "web", "tag": "v3"}}
            {"kind": "push_repo", "datetime": "2023-11-15T22:13:20Z", "metadata": {"namespace": "acme", "repo": "web", "tag": "v3"}}
            {"repository": "team/api", "digest": "\(Self.digest(205))", "method": "GET", "time": "2023-11-16T00:00:00Z"}
            not json

            """.utf8).write(to: file)
        let deployment = try Deployment()
        let source = try LogFileSource(
            path: file.path, chunkSize: 2, pullKindID: 9, history: QuayTagHistory(database: try BlockingDatabase(quayDatabase, connections: 1))
        )
        let first = try await deployment.importing(source).run()
        #expect(first.invalid == 1 && first.ignored == 1, "\(first.line)")
        #expect(first.invalidExamples == ["line 6: neither a JSON object PullSketch reads nor a line of the registry's logs"])
        let stored = try deployment.rows()
        // v3 pulled by HEAD and by GET the first day (manifest 103), and after the retag (manifest 153).
        #expect(stored["tag|acme/web|v3"]?.count == 3)
        #expect(stored["manifest|acme/web|\(Self.digest(103))"]?.count == 1, "the HEAD only used it")
        #expect(stored["manifest|acme/web|\(Self.digest(153))"]?.count == 1)
        #expect(stored["manifest|team/api|\(Self.digest(205))"]?.count == 1)
        #expect(before < after)
        #expect(
            try PostgresConnection(deployment.statistics).query(
                "SELECT source, (extract(epoch from since) * 1000)::bigint, (extract(epoch from until) * 1000)::bigint FROM pull_knowledge"
            ).rows == [[deployment.importing(source).node, String(before), String(after)]],
            "the first and the last pull imported; the import's own batches are no live counting"
        )
        let again = try await deployment.importing(source).run()
        #expect(again.pulls == 0, "\(again.line)")
        #expect(try deployment.rows() == stored)
    }
}

extension HistoryImportTests {
    /// An operator importing a large log needs to know why entries were skipped: each chunk keeps,
    /// for its first few invalid entries, the line and what is wrong, and counts the rest.
    @Test func anInvalidEntrySaysWhereItIsAndWhatIsWrong() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-invalid-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("""
            {"repository": "team/app", "tag": "v1", "method": "GET", "time": "2026-10-01T00:00:00Z"}
            not json
            {"repository": "Team/App", "tag": "v1", "method": "GET", "time": "2026-10-01T00:00:00Z"}
            {"repository": "team/app", "tag": "v1", "method": "GET"}
            {"repository": "team/app", "tag": "v1", "method": "PUT", "time": "2026-10-01T00:00:00Z"}
            {"kind": "pull_repo", "datetime": "2023-11-15T22:13:20Z", "metadata": {"namespace": "acme", "repo": "web", "tag": "-v1"}}
            {"kind": "pull_repo", "datetime": "yesterday", "metadata": {"namespace": "acme", "repo": "web", "tag": "v1"}}
            {"kind": "pull_repo", "datetime": 1e300, "metadata": {"namespace": "acme", "repo": "web", "tag": "v1"}}

            """.utf8).write(to: file)
        let source = try LogFileSource(path: file.path, chunkSize: 5)
        let first = try #require(try await source.chunk(0))
        #expect(first.pulls.count == 1 && first.invalid == 4)
        #expect(first.invalidExamples == [
            "line 2: neither a JSON object PullSketch reads nor a line of the registry's logs", "line 3: a pull: invalid repository 'Team/App'", "line 4: a pull without a time",
        ])
        let second = try #require(try await source.chunk(1))
        #expect(second.pulls.isEmpty && second.invalid == 3)
        #expect(second.invalidExamples.count == 3)
        #expect(second.invalidExamples.contains("line 7: an audit entry whose datetime is not a time"))
        #expect(second.invalidExamples.contains("line 8: an audit entry whose datetime is not a time"), "1e300 seconds, past 64-bit milliseconds")
        #expect(second.invalidExamples.contains { $0.hasPrefix("line 6: an audit entry: invalid tag") }, "\(second.invalidExamples)")
    }
}

/// A statistics row, or what it must be: count, its error, last pull (ms).
struct StatsRow: Hashable, CustomStringConvertible {
    var count: Int64 = 0
    var error: Int64 = 0
    var last: Int64 = .min

    mutating func pull(at time: Int64) {
        count += 1
        last = max(last, time)
    }

    var description: String { "count \(count)±\(error) last \(last)" }
}
