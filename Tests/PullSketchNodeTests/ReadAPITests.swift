import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PullSketchConfig
import PullSketchCore
import PullSketchNode
import PullSketchStore
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.postgresServer) struct ReadAPITests {
    static let reader: HTTPFields = [.authorization: "Bearer \(NodeFixture.teamToken)"]
    static let digest = "sha256:" + String(repeating: "d", count: 64)

    /// team/app: v1 pulled 1,750 times (exact, 2026-11-20), v2 ~12,000 ± 40 (approximate, 2026-11-21),
    /// v3 pushed and never pulled; their manifest last used 2026-11-22 (by digest); other/app exists but is outside the team token's scope.
    /// Pulls are known from 2026-11-01.
    func seeded(statisticsEnabled: Bool = true, readAuth: ReadAuth? = nil) throws -> NodeFixture {
        let fixture = try readAuth.map { try NodeFixture(readAuth: $0) } ?? NodeFixture(statisticsEnabled: statisticsEnabled)
        _ = try fixture.sql("INSERT INTO pull_knowledge (source, since) VALUES ('live', '2026-11-01T00:00:00Z')")
        _ = try fixture.sql("""
            WITH r AS (INSERT INTO repositories (name) VALUES ('team/app'), ('other/app') RETURNING id, name),
            t AS (INSERT INTO catalog_tags (repository_id, tag, digest, pushed_at)
                SELECT id, tag, $1, '2026-01-01T00:00:00Z' FROM r, unnest(ARRAY['v1', 'v2', 'v3']) tag RETURNING 1),
            m AS (INSERT INTO catalog_manifests (repository_id, digest) SELECT id, $1 FROM r RETURNING 1),
            ms AS (INSERT INTO manifest_stats (repository_id, digest, fetches, checks, pull_count, last_pulled_at, last_used_at)
                SELECT id, $1, 900, 5, 900, '2026-11-21T10:00:00Z', '2026-11-22T07:00:00Z' FROM r WHERE name = 'team/app' RETURNING 1)
            INSERT INTO tag_stats (repository_id, tag, fetches, checks, pull_count, pull_count_error, last_pulled_at, last_pulled_exact,
                last_used_at, last_used_exact, counters_exact, current_digest)
            SELECT id, v.tag, v.fetches, v.checks, v.count, v.error, v.last::timestamptz, v.error = 0, v.last::timestamptz, v.error = 0,
                v.error = 0, $1
            FROM r, (VALUES ('v1', 1500, 250, 1750, 0, '2026-11-20T08:00:00Z'), ('v2', 12000, 0, 12000, 40, '2026-11-21T09:30:00Z'))
                AS v(tag, fetches, checks, count, error, last)
            WHERE r.name = 'team/app'
            """, [Self.digest])
        return fixture
    }

    @Test func tagStatisticsUseUpstreamFieldNamesWithRawCountersAndBounds() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/tag/v2/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok)
                let body = response.json
                #expect(body["tag_name"] as? String == "v2")
                #expect(body["tag_pull_count"] as? Int == 12_000)
                #expect(body["last_tag_pull_date"] as? String == "2026-11-21T09:30:00.000Z")
                #expect(body["current_manifest_digest"] as? String == Self.digest)
                #expect(body["manifest_pull_count"] as? Int == 900)
                #expect(body["last_manifest_pull_date"] as? String == "2026-11-21T10:00:00.000Z")
                #expect(body["tag_pull_count_error"] as? Int == 40 && body["tag_exact"] as? Bool == false)
                #expect(body["tag_fetches"] is NSNull && body["tag_checks"] is NSNull, "a tail-estimated key's raw counters are unknown")
                #expect(body["last_tag_used_date"] as? String == "2026-11-21T09:30:00.000Z")
                #expect(body["last_manifest_used_date"] as? String == "2026-11-22T07:00:00.000Z")
                #expect(body["manifest_checks"] as? Int == 5 && body["manifest_exact"] as? Bool == true)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/tag/never/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok)
                #expect(response.json["tag_pull_count"] as? Int == 0)
                #expect(response.json["last_tag_pull_date"] is NSNull)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/manifest/\(Self.digest)/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.json["manifest_digest"] as? String == Self.digest)
                #expect(response.json["manifest_pull_count"] as? Int == 900)
                #expect(response.json["exact"] as? Bool == true)
            }
        }
    }

    @Test func theRequirementDocumentsFieldNamesAreServedAndUntaggedManifestsAreListed() async throws {
        let fixture = try seeded()
        let untagged = "sha256:" + String(repeating: "e", count: 64)
        _ = try fixture.sql("""
            WITH r AS (SELECT id FROM repositories WHERE name = 'team/app'),
            m AS (INSERT INTO catalog_manifests (repository_id, digest, pushed_at) SELECT id, $1, '2026-02-01T00:00:00Z' FROM r RETURNING 1)
            INSERT INTO manifest_stats (repository_id, digest, fetches, pull_count, last_pulled_at, last_used_at)
            SELECT id, $1, 7, 7, '2026-11-23T00:00:00Z', '2026-11-23T00:00:00Z' FROM r
            """, [untagged])
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/tag/v2/pull_statistics", method: .get, headers: Self.reader) { response in
                let body = response.json
                #expect(body["manifest_digest"] as? String == Self.digest)
                #expect(body["manifest_total_pull_count"] as? Int == 900)
                #expect(body["manifest_last_pull_date"] as? String == "2026-11-21T10:00:00.000Z")
            }
            try await client.execute(uri: "/api/v1/repository/team/app/manifest/\(Self.digest)/pull_statistics", method: .get, headers: Self.reader) { response in
                let body = response.json
                #expect(body["total_pull_count"] as? Int == 900 && body["last_pull_date"] as? String == "2026-11-21T10:00:00.000Z")
                #expect(body["last_tag_pulled"] as? String == "v2", "v2's last pull is later than v1's")
                let current = (body["current_tags"] as? [[String: Any]] ?? []).map { ($0["tag_name"] as? String ?? "", $0["tag_pull_count"] as? Int ?? -1) }
                #expect(current.map(\.0) == ["v1", "v2", "v3"] && current.map(\.1) == [1_750, 12_000, 0])
                #expect(body["untagged"] as? Bool == false)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/manifest/\(untagged)/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.json["untagged"] as? Bool == true && response.json["total_pull_count"] as? Int == 7)
                #expect(response.json["last_tag_pulled"] is NSNull && (response.json["current_tags"] as? [Any])?.isEmpty == true)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics?sort=pull_count", method: .get, headers: Self.reader) { response in
                let body = response.json
                let manifests = (body["manifest_statistics"] as? [[String: Any]] ?? []).map { $0["manifest_digest"] as? String ?? "" }
                #expect(manifests == [Self.digest, untagged], "every manifest, the untagged one too, by pull count")
                let first = (body["manifest_statistics"] as? [[String: Any]])?.first
                #expect(first?["tags"] as? [String] == ["v1", "v2", "v3"] && first?["last_tag_pulled"] as? String == "v2")
                let tags = (body["tag_statistics"] as? [[String: Any]] ?? []).map { $0["tag_name"] as? String ?? "" }
                #expect(tags == ["v2", "v1", "v3"] && body["has_more_manifests"] as? Bool == false)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics?sort=name&limit=1&page=2", method: .get, headers: Self.reader) { response in
                let manifests = (response.json["manifest_statistics"] as? [[String: Any]] ?? []).map { $0["manifest_digest"] as? String ?? "" }
                #expect(manifests == [untagged] && response.json["has_more_manifests"] as? Bool == false)
            }
        }
    }

    @Test func aRepositoryExportsEveryTagAsCSVInPagesByName() async throws {
        let fixture = try seeded()
        _ = try fixture.sql("""
            INSERT INTO catalog_tags (repository_id, tag) SELECT id, 'w' || lpad(n::text, 4, '0') FROM repositories, generate_series(1, 2100) n
            WHERE name = 'team/app'
            """)
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics.csv", method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok && response.headers[.contentType] == "text/csv; charset=utf-8")
                let lines = response.text.split(separator: "\n").map(String.init)
                #expect(lines.count == 1 + 3 + 2_100, "a header and every tag, over three pages of 1,000")
                #expect(lines[0].hasPrefix("tag,current_manifest_digest,tag_pull_count,"))
                #expect(lines[1] == "v1,\(Self.digest),1750,0,2026-11-20T08:00:00.000Z,2026-11-20T08:00:00.000Z,900,0,2026-11-21T10:00:00.000Z,2026-11-22T07:00:00.000Z,2026-01-01T00:00:00.000Z")
                #expect(lines[4] == "w0001,,0,0,,,0,0,,,", "a tag known only by name")
                #expect(lines.last?.hasPrefix("w2100,") == true)
            }
            try await client.execute(uri: "/api/v1/repository/other/app/pull_statistics.csv", method: .get, headers: Self.reader) {
                #expect($0.status == .notFound, "outside the token's scope")
            }
        }
    }

    /// HTTP/1.0 has no chunks: the streamed export reaches an HTTP/1.0 client as the CSV itself,
    /// ended by closing the connection, even one the client asked to keep.
    @Test func anHTTP10ClientReadsTheExportAsSentAndThenTheConnectionCloses() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            let port = try #require(client.port)
            let export = "GET /api/v1/repository/team/app/pull_statistics.csv HTTP/1.0\r\nConnection: keep-alive\r\n"
                + "Authorization: Bearer \(NodeFixture.teamToken)\r\n\r\n"
            let (reply, closed) = try await onOwnThread {
                try exchange(port: port, Array((export + "GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n").utf8), timeout: 120)
            }
            let text = String(decoding: reply, as: UTF8.self)
            let parts = text.components(separatedBy: "\r\n\r\n")
            #expect(closed && parts.count == 2 && parts[0].hasPrefix("HTTP/1.0 200 OK\r\n"), "\(text)")
            #expect(parts[0].lowercased().contains("connection: close") && !parts[0].lowercased().contains("transfer-encoding"), "\(parts[0])")
            let lines = parts.last?.split(separator: "\n") ?? []
            #expect(lines.first?.hasPrefix("tag,current_manifest_digest,") == true && lines.count == 4, "a header and three tags, no chunk sizes: \(text)")
        }
    }

    @Test func theManifestPageShowsItsTagsAndAnUnknownDigestIsNotFound() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            try await client.execute(uri: "/repository/team/app/manifest/\(Self.digest)", method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok)
                #expect(response.text.contains("<code>\(Self.digest)</code>") && response.text.contains(">900<"))
                #expect(["v1", "v2", "v3"].allSatisfy { response.text.contains("<td><code>\($0)</code></td>") })
            }
            try await client.execute(uri: "/repository/team/app/manifest/sha256:\(String(repeating: "0", count: 64))", method: .get, headers: Self.reader) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/repository/team/app", method: .get, headers: Self.reader) { response in
                #expect(response.text.contains("Tags 1–3 of 3") && response.text.contains("href=\"/repository/team/app/manifest/\(Self.digest)\""))
                #expect(response.text.contains("/api/v1/repository/team/app/pull_statistics.csv"))
            }
        }
    }

    @Test func aRepositoryPageIsSortedAndPaginated() async throws {
        let fixture = try seeded()
        @Sendable func tags(_ response: TestResponse) -> [String] {
            (response.json["tags"] as? [[String: Any]] ?? []).compactMap { $0["tag_name"] as? String }
        }
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics?sort=pull_count", method: .get, headers: Self.reader) { response in
                #expect(tags(response) == ["v2", "v1", "v3"])
            }
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics?sort=last_pulled&order=asc&limit=2", method: .get, headers: Self.reader) { response in
                #expect(tags(response) == ["v3", "v1"], "never pulled first when ascending")
                #expect(response.json["has_more"] as? Bool == true)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics?sort=name&limit=2&page=2", method: .get, headers: Self.reader) { response in
                #expect(tags(response) == ["v3"])
                #expect(response.json["has_more"] as? Bool == false)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics?sort=size", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test func unattributedPullsShowInTheRepositoryStatisticsAndPage() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.json["unattributed_pull_count"] as? Int == 0)
            }
            try await client.execute(uri: "/repository/team/app", method: .get, headers: Self.reader) { response in
                #expect(!response.text.contains("reached no tag"))
            }
        }
        _ = try fixture.sql("INSERT INTO unattributed_pulls (repository_id, pulls) SELECT id, 1234 FROM repositories WHERE name = 'team/app'")
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.json["unattributed_pull_count"] as? Int == 1_234)
            }
            try await client.execute(uri: "/repository/team/app", method: .get, headers: Self.reader) { response in
                #expect(response.text.contains("1.2K pulls of this repository reached no tag"))
            }
        }
    }

    @Test func pruneCandidatesAreADryRunWithReasons() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates?max_pulls=2000", method: .get, headers: Self.reader) { response in
                let candidates = response.json["candidates"] as? [[String: Any]] ?? []
                #expect(candidates.compactMap { $0["tag_name"] as? String }.sorted() == ["v1", "v3"])
                #expect(candidates.allSatisfy { ($0["reasons"] as? [String])?.isEmpty == false })
                #expect(response.json["dry_run"] as? Bool == true)
                #expect(response.text.contains(#""repository":"team/app""#), "names are written as they are, no \\/")
                #expect(response.json["pulls_known_since"] as? String == "2026-11-01T00:00:00.000Z")
                #expect(response.json["history_complete"] as? Bool == true, "a count policy: counts since pulls are known")
            }
            // All three share the manifest used last, so they tie and the order by name decides.
            try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates?keep_most_recent=2", method: .get, headers: Self.reader) { response in
                #expect((response.json["candidates"] as? [[String: Any]])?.compactMap { $0["tag_name"] as? String } == ["v1"])
            }
            // A 300-day window begins before 2026-11-01, a 1-day window after.
            for (days, complete) in [(300, false), (1, true)] {
                try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates?not_pulled_days=\(days)", method: .get, headers: Self.reader) { response in
                    #expect(response.json["history_complete"] as? Bool == complete, "\(days) days")
                }
            }
            // An imported log that ends two months before live counting leaves a hole; one that
            // ends half a day before it reaches back to its first pull.
            for (until, since) in [("2026-09-01T00:00:00Z", "2026-11-01"), ("2026-10-31T12:00:00Z", "2025-01-01")] {
                _ = try fixture.sql("INSERT INTO pull_knowledge (source, since, until) VALUES ('import:log', '2025-01-01T00:00:00Z', '\(until)')")
                try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates?not_pulled_days=300", method: .get, headers: Self.reader) { response in
                    #expect(response.json["pulls_known_since"] as? String == "\(since)T00:00:00.000Z", "a log until \(until)")
                    #expect(response.json["history_complete"] as? Bool == (since == "2025-01-01"), "a log until \(until)")
                }
                _ = try fixture.sql("DELETE FROM pull_knowledge WHERE source = 'import:log'")
            }
            // A batch quarantined ten days ago: a 30-day window or a count may miss its pulls, a
            // 1-day window does not; once an operator deletes its row, the count is whole again.
            _ = try fixture.sql("INSERT INTO quarantined_batches (shard, batch, reason, content, quarantined_at) VALUES (0, 7, 'unreadable', '{}', now() - interval '10 days')")
            for (query, complete) in [("not_pulled_days=1", true), ("not_pulled_days=30", false), ("max_pulls=2000", false)] {
                try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates?\(query)", method: .get, headers: Self.reader) { response in
                    #expect(response.json["history_complete"] as? Bool == complete, "\(query)")
                    #expect(response.json["latest_quarantined_batch_at"] is String, "\(query)")
                }
            }
            _ = try fixture.sql("DELETE FROM quarantined_batches")
            try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates?max_pulls=2000", method: .get, headers: Self.reader) { response in
                #expect(response.json["history_complete"] as? Bool == true && response.json["latest_quarantined_batch_at"] is NSNull)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates?tag_pattern=(", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/prune_candidates", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest, "no criterion")
            }
        }
        #expect(try fixture.sql("SELECT count(*) FROM catalog_tags WHERE deleted_at IS NULL") == [["6"]], "a dry run deletes nothing")
    }

    /// Every listing and pruning parameter out of range: a 400 naming it, and the node serves on.
    @Test(arguments: [
        "pull_statistics?sort=size", "pull_statistics?order=up", "pull_statistics?limit=0", "pull_statistics?limit=501",
        "pull_statistics?limit=99999999999999999999", "pull_statistics?page=0", "pull_statistics?page=1000001",
        "pull_statistics?page=-9223372036854775808", "prune_candidates?not_pulled_days=200000000000", "prune_candidates?not_pulled_days=-1",
        "prune_candidates?not_pulled_days=36501", "prune_candidates?max_pulls=9223372036854775808", "prune_candidates?max_pulls=-1",
        "prune_candidates?max_pulls=ten", "prune_candidates?tag_pattern=\(String(repeating: "a", count: 257))",
        "prune_candidates?max_pulls=1&exclude_pattern=\(String(repeating: "a", count: 257))", "prune_candidates?keep_most_recent=-1",
        "prune_candidates?max_pulls=1&keep_most_recent=100000001",
        // A NUL would cut the pattern short: `x` instead of `x\0|v1`, and v1 no longer excluded.
        "prune_candidates?tag_pattern=x%00%7Cv1", "prune_candidates?max_pulls=2000&exclude_pattern=x%00%7Cv1",
    ])
    func anOutOfRangeParameterIsA400AndTheNodeServesOn(query: String) async throws {
        let fixture = try seeded()
        let name = String(query.split(separator: "&").last!.split(separator: "?").last!.split(separator: "=")[0])
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/repository/team/app/\(query)", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest)
                #expect((response.json["error"] as? String)?.contains(name) == true, "the message names \(name)")
            }
            try await client.execute(uri: "/repository/team/app?\(query.split(separator: "?")[1])", method: .get, headers: Self.reader) { response in
                #expect(response.status == (query.hasPrefix("pull_statistics") ? .badRequest : .ok), "the UI page reads the same listing parameters")
                #expect(response.headers[.contentType] == "text/html; charset=utf-8", "a page, for a browser")
                if response.status == .badRequest { #expect(response.text.contains("Bad request") && response.text.contains("\(name): ")) }
            }
            try await client.execute(uri: "/api/v1/repository/team/app/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func aSearchLongerThanAnyRepositoryNameOrWithANulIsA400() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            try await client.execute(uri: "/?q=\(String(repeating: "a", count: 256))", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/?q=\(String(repeating: "a", count: 255))", method: .get, headers: Self.reader) { #expect($0.status == .ok) }
            try await client.execute(uri: "/?q=team%00", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest, "a NUL")
                #expect(response.text.contains("q: must not contain a NUL character"), "said on a page: \(response.text)")
            }
        }
    }

    @Test func readersNeedATokenAndNeverLearnOfRepositoriesOutsideTheirScope() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            let uri = "/api/v1/repository/team/app/tag/v1/pull_statistics"
            try await client.execute(uri: uri, method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer wrong"]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/api/v1/repository/other/app/tag/v1/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/repository/other/nothing/tag/v1/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .notFound, "the same answer whether or not it exists")
            }
            try await client.execute(uri: "/api/v1/repository/team/App/tag/v1/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/api/v1/repository/team/app/manifest/sha256:xyz/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    /// Inside a reader's scope, a name PullSketch has no row for reads as never pulled: it learns
    /// names only from events and catalog syncs, so it cannot tell "never pulled" from "absent".
    @Test func aNameWithNoRowInTheReadersScopeReadsAsNeverPulled() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            for uri in ["/api/v1/repository/team/nothing/tag/v1/pull_statistics", "/api/v1/repository/team/app/tag/v9/pull_statistics"] {
                try await client.execute(uri: uri, method: .get, headers: Self.reader) { response in
                    #expect(response.status == .ok)
                    #expect(response.json["tag_pull_count"] as? Int == 0 && response.json["last_tag_pull_date"] is NSNull)
                }
            }
            let manifest = "/api/v1/repository/team/nothing/manifest/sha256:\(String(repeating: "0", count: 64))/pull_statistics"
            try await client.execute(uri: manifest, method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok)
                #expect(response.json["manifest_pull_count"] as? Int == 0 && (response.json["tags"] as? [Any])?.isEmpty == true)
            }
            try await client.execute(uri: "/api/v1/repository/team/nothing/pull_statistics", method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok)
                #expect((response.json["tags"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test func withTheFeatureFlagOffEveryStatisticsRouteIs404() async throws {
        let fixture = try seeded(statisticsEnabled: false)
        try await fixture.test { client in
            for uri in ["/api/v1/repository/team/app/tag/v1/pull_statistics", "/api/v1/repository/team/app/pull_statistics",
                        "/api/v1/repository/team/app/prune_candidates?max_pulls=1", "/", "/repository/team/app"] {
                try await client.execute(uri: uri, method: .get, headers: Self.reader) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect(uri.hasPrefix("/api") || response.text.contains("Pull statistics are not enabled."), "the UI says so on a page")
                }
            }
        }
    }

    @Test func theRepositoryPageShowsCompactCountsApproximationAndSorts() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            try await client.execute(uri: "/repository/team/app?sort=pull_count", method: .get, headers: Self.reader) { response in
                let html = response.text
                #expect(response.status == .ok)
                #expect(html.contains(">1.7K<") && html.contains(">10K+<"))
                #expect(html.contains("≈ ±40"))
                #expect(html.contains("title=\"2026-11-20T08:00:00.000Z\""))
                let order = ["v1", "v2", "v3"].map { html.range(of: "<code>\($0)</code>")!.lowerBound }
                #expect(order[1] < order[0] && order[0] < order[2], "v2 (12K) before v1 (1.7K) before v3 (0)")
            }
            try await client.execute(uri: "/repository/team/app?sort=name&order=desc", method: .get, headers: Self.reader) { response in
                let order = ["v1", "v2", "v3"].map { response.text.range(of: "<code>\($0)</code>")!.lowerBound }
                #expect(order[2] < order[1] && order[1] < order[0])
            }
            try await client.execute(uri: "/repository/other/app", method: .get, headers: Self.reader) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/?q=app", method: .get, headers: Self.reader) { response in
                #expect(response.text.contains("href=\"/repository/team/app\""))
                #expect(!response.text.contains("other/app"), "search lists only what the reader may read")
            }
        }
    }

    /// 200 more repositories outside the team token's scope, all named before team/app: the front
    /// page lists at most 200 repositories, and they are the first 200 the reader may read.
    @Test func aScopedReadersFrontPageListsItsRepositoriesPastTheRestOfTheRegistry() async throws {
        let fixture = try seeded()
        _ = try fixture.sql("INSERT INTO repositories (name) SELECT 'other/r' || n FROM generate_series(1, 200) n")
        try await fixture.test { client in
            try await client.execute(uri: "/", method: .get, headers: Self.reader) { response in
                #expect(response.status == .ok)
                #expect(response.text.contains("href=\"/repository/team/app\""))
                #expect(!response.text.contains("other/"))
            }
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func signingInKeepsTheTokenInAnHttpOnlyCookie() async throws {
        let fixture = try seeded()
        try await fixture.test { client in
            try await client.execute(uri: "/repository/team/app", method: .get) { #expect($0.status == .unauthorized) }
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            try await client.execute(uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "token=nope")) { #expect($0.status == .unauthorized) }
            let cookie = try await client.execute(uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "token=\(NodeFixture.teamToken)")) { response in
                #expect(response.status == .seeOther)
                let cookie = response.headers[.setCookie] ?? ""
                #expect(cookie.contains("HttpOnly"))
                return String(cookie.split(separator: ";")[0])
            }
            try await client.execute(uri: "/repository/team/app", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .ok) }
        }
    }

    @Test func healthIsOkOnlyWhenRedisAndPostgresAnswerAndNamesNoError() async throws {
        let redis = try RedisServer()
        let fixture = try NodeFixture(redisPort: redis.port)
        try await fixture.test { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .serviceUnavailable, "nothing checked yet") }
            await fixture.node.health.check()
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            redis.kill()
            await fixture.node.health.check()
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.json as NSDictionary == ["status": "unavailable", "redis": "unavailable", "postgres": "ok"] as NSDictionary,
                        "which service, never its error text")
            }
        }
    }

    /// HEAD answers every GET route — the health check, the API, the UI, the metrics — with GET's
    /// status and headers and no body, as load balancers' health checks expect (`option httpchk
    /// HEAD /healthz`); with a reader's token where GET needs one.
    @Test func headAnswersEveryGetRouteAsGetWouldWithoutTheBody() async throws {
        let redis = try RedisServer()
        let fixture = try NodeFixture(redisPort: redis.port)
        try await fixture.test { client in
            let port = try #require(client.port)
            for (path, authorized) in [("/healthz", false), ("/metrics", false), ("/", true), ("/api/v1/repository/team/app/tag/v1/pull_statistics", true)] {
                // The health check's result counts for 15 s; on a loaded machine it can go stale
                // between the GET and the HEAD, so a pair that disagrees is asked again.
                var answers: (get: RawAnswer, head: RawAnswer)?
                for _ in 0..<3 where answers.map({ $0.get.status != $0.head.status }) ?? true {
                    await fixture.node.health.check()
                    answers = (
                        try RawAnswer(try await NodeFixture.ask("GET", path, port: port, authorized: authorized)),
                        try RawAnswer(try await NodeFixture.ask("HEAD", path, port: port, authorized: authorized))
                    )
                }
                let (get, head) = try #require(answers)
                #expect(head.status == get.status && head.contentType == get.contentType, "\(path)")
                #expect(get.bodyBytes > 0 && head.bodyBytes == 0, "\(path)")
            }
        }
    }

    /// An answer's status, content type and body length, as `NodeFixture.ask` got it.
    struct RawAnswer {
        let status: Int
        let contentType: Substring?
        let bodyBytes: Int

        init(_ text: String) throws {
            let end = try #require(text.range(of: "\r\n\r\n"), "an answer: \(text)")
            let lines = text[..<end.lowerBound].split(separator: "\r\n")
            status = try #require(lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) }, "\(text)")
            contentType = lines.first { $0.lowercased().hasPrefix("content-type:") }.map { $0.dropFirst("content-type:".count).drop { $0 == " " } }
            bodyBytes = text.utf8.count - text[..<end.upperBound].utf8.count
        }
    }

    /// A known path asked with a method it does not serve is a 405 whose `Allow` names the methods
    /// it does — the webhook's URL fetched with `curl`, a form's path with `GET` — on the event
    /// loop's routes and the router's; an unknown path stays a 404.
    @Test func aWrongMethodOnAKnownPathIsA405NamingTheRightOnes() async throws {
        let fixture = try NodeFixture()
        try await fixture.test { client in
            let cases: [(String, HTTPRequest.Method, String)] = [
                ("/notifications", .get, "POST"), ("/notifications", .head, "POST"), ("/api/v1/pulls", .put, "POST"), ("/login", .get, "POST"),
                ("/healthz", .post, "GET, HEAD"), ("/api/v1/repository/team/app/pull_statistics", .delete, "GET, HEAD"),
                ("/", .options, "GET, HEAD"),
            ]
            for (path, method, allow) in cases {
                try await client.execute(uri: path, method: method, headers: Self.reader) { response in
                    #expect(response.status == .methodNotAllowed && response.headers[.allow] == allow, "\(method) \(path)")
                    #expect(method == .head || response.json["error"] is String, "\(method) \(path)")
                }
            }
            try await client.execute(uri: "/nowhere", method: .get) { #expect($0.status == .notFound) }
        }
        #expect(fixture.tracker.drain().isEmpty)
    }

    /// A database whose schema lacks a migration of this build fails the health check until it
    /// has it: every statement of the build may fail on it.
    @Test func healthIsUnavailableWhileTheSchemaLacksAMigration() async throws {
        let redis = try RedisServer()
        let fixture = try NodeFixture(redisPort: redis.port)
        let last = try #require(Schema.migrations.last)
        try await fixture.test { client in
            await fixture.node.health.check()
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            _ = try fixture.sql("DELETE FROM schema_migrations WHERE version = $1", [String(last.version)])
            await fixture.node.health.check()
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .serviceUnavailable && response.json["postgres"] as? String == "unavailable")
            }
            _ = try fixture.sql("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [String(last.version), last.name])
            await fixture.node.health.check()
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
        }
    }

    /// A read that fails for a reason with no HTTP status (here the repositories table gone from
    /// under the node) is a 500 with a JSON error that keeps the cause to itself, and the cause is
    /// logged.
    @Test func aReadThatFailsUnexpectedlyIsAJSON500AndLogged() async throws {
        let lines = Mutex<[String]>([])
        let logger = Logger(label: "test") { label in UTCLogHandler(label: label) { line in lines.withLock { $0.append(line) } } }
        let fixture = try NodeFixture(readAuth: .none)
        _ = try fixture.sql("ALTER TABLE repositories RENAME TO repositories_away")
        try await fixture.test(logger: logger) { client in
            try await client.execute(uri: "/api/v1/repository/team/app/tag/v1/pull_statistics", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(response.json["error"] as? String == "internal error; the node's log says what failed")
                #expect(!response.text.contains("repositories"))
            }
        }
        let logged = lines.withLock { $0 }.filter { $0.contains("request failed") }
        #expect(logged.count == 1 && logged[0].contains(" error ") && logged[0].contains("repositories"), "\(logged)")
    }

    /// The health check asks `TIME` beside `PING`; a Redis (or a proxy) that refuses `TIME` is up
    /// all the same, and the node keeps its host's clock.
    @Test func aRedisThatRefusesTimeIsStillUpAndLeavesTheNodesClockAlone() async throws {
        let redis = try RedisServer(options: ["--rename-command", "TIME", "TIME_RENAMED_AWAY"])
        let fixture = try NodeFixture(redisPort: redis.port)
        try await fixture.test { client in
            await fixture.node.health.check()
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            #expect(abs(fixture.node.now().millisecondsSinceEpoch - Timestamp.now().millisecondsSinceEpoch) < 1_000)
        }
    }

    /// A Redis that takes connections and never replies holds only the health check: `/healthz`
    /// and statistics reads, many at once, all answer while that check is still waiting on its
    /// timeout (so it never got to PostgreSQL, and `/healthz` says both are unavailable). The
    /// timeout is an hour, so that a loaded machine cannot outlast it (CI once did with 120 s, and
    /// the finished check found PostgreSQL up); the silent server's closing at the end ends it.
    @Test func healthAndReadsAnswerWhileRedisAcceptsButNeverReplies() async throws {
        let silent = try SilentServer()
        let fixture = try NodeFixture(redisPort: silent.port, redisTimeout: 3_600)
        // Detached: a child task would hold the suite's PostgreSQL (a task-local) past the test.
        let monitor = Task.detached { try await fixture.node.health.run() }
        defer { monitor.cancel() }
        // Connections of their own, so that the requests are answered at once, not one by one: the
        // test client holds 8, and a request waiting for one fails after 10 s on a loaded machine.
        try await fixture.test(.ahc()) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await client.execute(uri: "/healthz", method: .get) { response in
                            #expect(response.status == .serviceUnavailable)
                            #expect(response.json["postgres"] as? String == "unavailable", "answered before the stuck check finished")
                        }
                    }
                    group.addTask {
                        try await client.execute(uri: "/api/v1/repository/team/app/tag/v1/pull_statistics", method: .get, headers: Self.reader) {
                            #expect($0.status == .ok)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}
