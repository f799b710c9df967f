import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Testing

@Suite(.postgresServer) struct StatisticsQueriesTests {
    let repository = try! RepositoryName("team/app")
    let day: Int64 = 86_400_000
    let now = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)

    /// `name` repeated to 64 hex digits.
    func digest(_ name: String) -> Digest {
        try! Digest("sha256:" + String(repeating: name, count: 64 / name.count))
    }

    /// Writes `events` into `connection` as reconciled batch `number`: one tracker window, one shard.
    func reconcile(_ events: [PullEvent], batch number: Int64, into connection: PostgresConnection) throws {
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: 1, shardCount: 1))
        for event in events { tracker.record(event) }
        let window = tracker.drain()
        _ = try BatchWriter(connection: connection, shardCount: 1).write(SealedBatch(number: number, parameters: window.parameters, content: window.shards[0]))
    }

    /// a: 10 pulls today; b: 2 pulls 100 days ago; c: never pulled, pushed 200 days ago;
    /// d: never pulled, pushed yesterday; e: pulled, then deleted. `alsoWrite` adds to the database
    /// afterwards.
    func seeded(alsoWrite: (PostgresConnection) throws -> Void = { _ in }) throws -> StatisticsQueries {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        let catalog = Catalog(connection: connection)
        let pushed: [(String, Int64)] = [("a", 300), ("b", 300), ("c", 200), ("d", 1), ("e", 300)]
        for (tag, daysAgo) in pushed {
            try catalog.upsertTag(repository, try TagName(tag), digest: digest(tag), pushedAt: Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - daysAgo * day))
        }
        let pulls: [(String, Int, Int64)] = [("a", 10, 0), ("b", 2, 100), ("e", 1, 5)]
        try reconcile(
            try pulls.flatMap { tag, count, daysAgo in
                let event = PullEvent(repository: repository, reference: .tag(try TagName(tag)), method: .get, servedDigest: digest(tag),
                                      time: Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - daysAgo * day))
                return Array(repeating: event, count: count)
            },
            batch: 1, into: connection
        )
        try catalog.deleteTag(repository, try TagName("e"), at: now)
        try alsoWrite(connection)
        return StatisticsQueries(connection: connection)
    }

    @Test func aTagReportsItsOwnAndItsManifestsStatistics() throws {
        let queries = try seeded()
        let a = try #require(try queries.tag(repository, try TagName("a")))
        #expect(a.fetches == 10 && a.pullCount == 10 && a.pullCountError == 0 && a.lastPulledExact)
        #expect(a.lastPulledAt == now)
        #expect(a.currentDigest == digest("a").value)
        #expect(a.manifest?.pullCount == 10)
        let d = try #require(try queries.tag(repository, try TagName("d")))
        #expect(d.pullCount == 0 && d.lastPulledAt == nil && d.manifest?.pullCount == 0)
        #expect(try queries.tag(repository, try TagName("zzz")) == nil)
        #expect(try queries.tag(repository, try TagName("e")) == nil)
        #expect(try queries.manifestListing(repository, digest("b"))?.statistics.pullCount == 2)
        #expect(try queries.manifestListing(repository, digest("f")) == nil)
    }

    @Test func listingsAreSortedAndPaginated() throws {
        let queries = try seeded()
        func names(_ order: TagOrder, descending: Bool, limit: Int = 10, offset: Int = 0) throws -> [String] {
            try queries.tags(repository, order: order, descending: descending, limit: limit, offset: offset).map(\.tag)
        }
        #expect(try names(.lastPulled, descending: true) == ["a", "b", "c", "d"])
        #expect(try names(.lastPulled, descending: false) == ["c", "d", "b", "a"])
        #expect(try names(.pullCount, descending: true) == ["a", "b", "c", "d"])
        #expect(try names(.name, descending: true) == ["d", "c", "b", "a"])
        #expect(try names(.name, descending: false, limit: 2, offset: 1) == ["b", "c"])
    }

    @Test func pruneCandidatesFollowThePolicyAndNeverListDeletedTags() throws {
        let queries = try seeded()
        func candidates(_ policy: PrunePolicy) throws -> [String] {
            try queries.pruneCandidates(repository, policy: policy, now: now).map(\.tag)
        }
        #expect(try candidates(PrunePolicy(notPulledDays: 30)) == ["c", "b"])
        #expect(try candidates(PrunePolicy(maxPulls: 3)).sorted() == ["b", "c", "d"])
        #expect(try candidates(PrunePolicy(notPulledDays: 30, maxPulls: 1)) == ["c"])
        #expect(try candidates(PrunePolicy(notPulledDays: 30, tagPattern: "^[bc]$", excludePattern: "^b$")) == ["c"])
        let never = try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now)[0]
        #expect(never.reasons == [
            "tag never used, pushed more than 30 days ago", "manifest never used, pushed more than 30 days ago",
            "decided by the tag, the more recently active",
        ])
        #expect {
            try queries.pruneCandidates(repository, policy: PrunePolicy(tagPattern: "(unclosed"), now: now)
        } throws: { error in
            (error as? PostgresError)?.kind == .statement
        }
    }

    /// The tags most recently used or pushed are kept, counted among the live tags the patterns
    /// select (deleted e, pulled 5 days ago, is not one of them), in the order candidates are listed.
    @Test func theMostRecentlyActiveTagsAreKept() throws {
        let queries = try seeded()
        func candidates(_ policy: PrunePolicy) throws -> [String] {
            try queries.pruneCandidates(repository, policy: policy, now: now).map(\.tag)
        }
        #expect(try candidates(PrunePolicy(keepMostRecent: 0)) == ["c", "b", "d", "a"])
        #expect(try candidates(PrunePolicy(keepMostRecent: 2)) == ["c", "b"])
        #expect(try candidates(PrunePolicy(keepMostRecent: 3)) == ["c"])
        #expect(try candidates(PrunePolicy(keepMostRecent: 4)).isEmpty)
        #expect(try candidates(PrunePolicy(notPulledDays: 30, keepMostRecent: 3)) == ["c"], "kept by either rule")
        #expect(try candidates(PrunePolicy(tagPattern: "^[bc]$", keepMostRecent: 1)) == ["c"], "the most recent of the tags selected")
        let reasons = try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30, keepMostRecent: 1), now: now).map(\.reasons)
        #expect(reasons.count == 2 && reasons.allSatisfy { $0.last == "not among the 1 most recently used or pushed tags" })
    }

    /// Each reason says what is known: a tag pulled long ago is "not used", and when its manifest
    /// was used later by digest, the manifest decides.
    @Test func reasonsSayWhatWasLastUsedAndWhatDecided() throws {
        let queries = try seeded { connection in
            let fiftyDaysAgo = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 50 * day)
            try reconcile([PullEvent(repository: repository, reference: .digest(digest("c")), method: .get, time: fiftyDaysAgo)], batch: 2, into: connection)
        }
        let reasons = Dictionary(uniqueKeysWithValues: try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).map { ($0.tag, $0.reasons) })
        #expect(reasons["b"] == [
            "tag not used or pushed for 30 days", "manifest not used or pushed for 30 days",
            "decided by the tag, the more recently active",
        ])
        #expect(reasons["c"] == [
            "tag never used, pushed more than 30 days ago", "manifest not used or pushed for 30 days",
            "decided by the manifest, the more recently active",
        ])
    }

    /// Candidates whose reasons differ only in their counts, in which key decided, in whether the
    /// manifest is an image index, or not at all, each get their whole list, in order: activity,
    /// counts, pattern. b, 9, 7 and 8: tags pushed long ago and pulled 100 days ago; 7's manifest was
    /// pulled by digest 50 days ago, 8's manifest is an index listing b's; f's manifest is unknown.
    @Test func everyCandidateGetsItsOwnCountsAndTheSharedPhrasesOnce() throws {
        let queries = try seeded { connection in
            let catalog = Catalog(connection: connection)
            for tag in ["f", "9", "7", "8"] {
                try catalog.upsertTag(repository, try TagName(tag), digest: digest(tag), pushedAt: Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 400 * day))
            }
            _ = try connection.query("UPDATE catalog_tags SET digest = NULL WHERE tag = 'f'")
            try catalog.link([IndexLink(repository: repository, index: digest("8"), child: digest("b"), platform: "linux/amd64")])
            func daysAgo(_ days: Int64) -> Timestamp { Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - days * day) }
            func byTag(_ tag: String) throws -> PullEvent {
                PullEvent(repository: repository, reference: .tag(try TagName(tag)), method: .get, servedDigest: digest(tag), time: daysAgo(100))
            }
            try reconcile(
                Array(repeating: try byTag("9"), count: 3) + [try byTag("7"), try byTag("8")]
                    + [PullEvent(repository: repository, reference: .digest(digest("7")), method: .get, time: daysAgo(50))],
                batch: 2, into: connection
            )
        }
        let counted = Dictionary(uniqueKeysWithValues: try queries.pruneCandidates(
            repository, policy: PrunePolicy(notPulledDays: 30, maxPulls: 5, tagPattern: "^[bf9]$"), now: now
        ).map { ($0.tag, $0.reasons) })
        let inactive = ["tag not used or pushed for 30 days", "manifest not used or pushed for 30 days", "decided by the tag, the more recently active"]
        #expect(counted == [
            "b": inactive + ["tag 2 pulls and manifest 2 pulls, fewer than 5", "matches ^[bf9]$"],
            "9": inactive + ["tag 3 pulls and manifest 3 pulls, fewer than 5", "matches ^[bf9]$"],
            "f": ["tag never used, pushed more than 30 days ago", "the tag's manifest is not known", "tag 0 pulls and manifest 0 pulls, fewer than 5", "matches ^[bf9]$"],
        ])
        let uncounted = Dictionary(uniqueKeysWithValues: try queries.pruneCandidates(
            repository, policy: PrunePolicy(notPulledDays: 30, tagPattern: "^[b978]$"), now: now
        ).map { ($0.tag, $0.reasons) })
        #expect(uncounted == [
            "b": inactive + ["matches ^[b978]$"],
            "9": inactive + ["matches ^[b978]$"],
            "7": ["tag not used or pushed for 30 days", "manifest not used or pushed for 30 days", "decided by the manifest, the more recently active", "matches ^[b978]$"],
            "8": inactive + ["an image index: none of its platform manifests used for 30 days either", "matches ^[b978]$"],
        ])
        let patternOnly = try queries.pruneCandidates(repository, policy: PrunePolicy(tagPattern: "^[b9]$"), now: now)
        #expect(patternOnly.count == 2 && patternOnly.allSatisfy { $0.reasons == ["matches ^[b9]$"] })
    }

    /// Signature and referrers tags (`sha256-<hex>.sig`, `sha256-<hex>`) follow the manifest they
    /// name: never pulled and pushed long ago, each is listed only when its subject is not kept.
    @Test func aReferrerTagGoesOnlyWithTheManifestItNames() throws {
        func referrer(of subject: String, _ suffix: String = ".sig") -> String {
            "sha256-" + digest(subject).value.dropFirst("sha256:".count) + suffix
        }
        // Subjects: a (pulled today), c (a candidate), e (untagged since e was deleted, pulled 5
        // days ago), f (unknown), 7 (untagged, listed by the live index 8), 5 (pulled 10 days ago,
        // then deleted), and f1: the manifest of a's signature, whose own signature is listed first
        // and then kept.
        let signatures: [(tag: String, manifest: String)] = [
            (referrer(of: "a"), "f1"), (referrer(of: "f1"), "f2"), (referrer(of: "c"), "f3"), (referrer(of: "c", ""), "f4"),
            (referrer(of: "e", ".att"), "f5"), (referrer(of: "f"), "f6"), (referrer(of: "7"), "f7"), (referrer(of: "5"), "f8"),
            ("sha256-" + String(repeating: "c", count: 63) + ".sig", "f9"),
        ]
        let queries = try seeded { connection in
            let catalog = Catalog(connection: connection)
            let longAgo = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 400 * day)
            for (tag, manifest) in signatures { try catalog.upsertTag(repository, try TagName(tag), digest: digest(manifest), pushedAt: longAgo) }
            try catalog.upsertTag(repository, try TagName("8"), digest: digest("8"), pushedAt: now)
            try catalog.link([IndexLink(repository: repository, index: digest("8"), child: digest("7"), platform: nil)])
            try catalog.upsertManifest(repository, digest("5"), pushedAt: longAgo)
            let tenDaysAgo = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 10 * day)
            try reconcile([PullEvent(repository: repository, reference: .digest(digest("5")), method: .get, time: tenDaysAgo)], batch: 2, into: connection)
            try catalog.deleteManifest(repository, digest("5"), at: Timestamp(millisecondsSinceEpoch: longAgo.millisecondsSinceEpoch + day))
        }
        func candidates(_ policy: PrunePolicy) throws -> [String: [String]] {
            Dictionary(uniqueKeysWithValues: try queries.pruneCandidates(repository, policy: policy, now: now).map { ($0.tag, $0.reasons) })
        }
        let listed = try candidates(PrunePolicy(notPulledDays: 30))
        #expect(Set(listed.keys) == ["b", "c", referrer(of: "c"), referrer(of: "c", ""), referrer(of: "f"), referrer(of: "5"), signatures[8].tag])
        #expect(listed[referrer(of: "c")]?.last == "names manifest \(digest("c").value), which is not kept either")
        #expect(listed[signatures[8].tag]?.contains { $0.hasPrefix("names manifest") } == false, "63 digits name no manifest")
        // c kept because the policy spares it: its signatures stay too.
        #expect(Set(try candidates(PrunePolicy(notPulledDays: 30, excludePattern: "^c$")).keys) == [
            "b", referrer(of: "f"), referrer(of: "5"), signatures[8].tag,
        ])
        // By pulls alone: c (0 pulls) goes, a (10) stays, and so do their signatures.
        let byPulls = try candidates(PrunePolicy(maxPulls: 5))
        #expect(byPulls[referrer(of: "c")] != nil && byPulls[referrer(of: "a")] == nil && byPulls[referrer(of: "f1")] == nil)
    }

    /// Times are read back as milliseconds computed in `float8`: every millisecond comes back as
    /// written, from before 1970 to the end of year 9999.
    @Test func timesComeBackToTheMillisecond() throws {
        let times: [Int64] = [-86_400_001, 0, 1, 999, 1_800_000_000_123, 1_800_000_000_999, 4_102_444_800_001, 253_402_300_799_999]
        let queries = try seeded { connection in
            let catalog = Catalog(connection: connection)
            for (index, time) in times.enumerated() {
                try catalog.upsertTag(repository, try TagName("time\(index)"), digest: digest("f"), pushedAt: Timestamp(millisecondsSinceEpoch: time))
            }
        }
        for (index, time) in times.enumerated() {
            #expect(try queries.tag(repository, try TagName("time\(index)"))?.pushedAt?.millisecondsSinceEpoch == time)
        }
    }

    /// Another repository holds tags of the same names pointing at the same digests, all pulled
    /// today: none of its rows may make team/app's unused tags look used, or the reverse.
    @Test func eachRepositorysAnswersReadOnlyItsOwnRows() throws {
        let other = try RepositoryName("team/other")
        let queries = try seeded { connection in
            let catalog = Catalog(connection: connection)
            var pulls: [PullEvent] = []
            for tag in ["b", "c"] {
                try catalog.upsertTag(other, try TagName(tag), digest: digest(tag), pushedAt: now)
                pulls += Array(repeating: PullEvent(repository: other, reference: .tag(try TagName(tag)), method: .get, servedDigest: digest(tag), time: now), count: 5)
            }
            try reconcile(pulls, batch: 2, into: connection)
        }
        let stale = try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now)
        #expect(stale.map(\.tag) == ["c", "b"])
        #expect(stale.map(\.manifestPullCount) == [0, 2])
        #expect(try queries.pruneCandidates(repository, policy: PrunePolicy(maxPulls: 3), now: now).map(\.tag).sorted() == ["b", "c", "d"])
        #expect(try queries.tags(repository, order: .lastPulled, descending: false, limit: 10, offset: 0).map(\.pullCount) == [0, 0, 2, 10])
        #expect(try queries.pruneCandidates(other, policy: PrunePolicy(notPulledDays: 30), now: now).isEmpty)
        #expect(try queries.pruneCandidates(try RepositoryName("team/none"), policy: PrunePolicy(maxPulls: 3), now: now).isEmpty)
    }

    /// team/old: x pulled 10 days ago, y pulled today and then deleted; team/empty: its only tag
    /// deleted, never pulled; other/app: one tag, never pulled. Beside the seeded team/app (four
    /// live tags, a pulled today).
    @Test func theSearchListsEachRepositorysLiveTagsAndTheirLatestPull() throws {
        let queries = try seeded { connection in
            let catalog = Catalog(connection: connection)
            let old = try RepositoryName("team/old"), empty = try RepositoryName("team/empty"), other = try RepositoryName("other/app")
            let pushed = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 300 * day)
            for (repository, tag, name) in [(old, "x", "1"), (old, "y", "2"), (empty, "z", "3"), (other, "w", "4")] {
                try catalog.upsertTag(repository, try TagName(tag), digest: digest(name), pushedAt: pushed)
            }
            let tenDaysAgo = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 10 * day)
            try reconcile(
                [
                    PullEvent(repository: old, reference: .tag(try TagName("x")), method: .get, servedDigest: digest("1"), time: tenDaysAgo),
                    PullEvent(repository: old, reference: .tag(try TagName("y")), method: .get, servedDigest: digest("2"), time: now),
                ],
                batch: 2, into: connection
            )
            try catalog.deleteTag(old, try TagName("y"), at: now)
            try catalog.deleteTag(empty, try TagName("z"), at: now)
        }
        let found = try queries.repositories(containing: "team/", limit: 10)
        #expect(found.map(\.name) == ["team/app", "team/empty", "team/old"])
        #expect(found.map(\.tags) == [4, 0, 1], "deleted tags are not counted")
        #expect(found.map(\.lastPulledAt) == [now, nil, Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 10 * day)],
                "the latest pull of a live tag: y's pull today went with y")
        #expect(try queries.repositories(containing: "team/", limit: 2).map(\.name) == ["team/app", "team/empty"])
        #expect(try queries.repositories(containing: "", limit: 10).map(\.name) == ["other/app", "team/app", "team/empty", "team/old"])
    }

    /// Patterns as reader tokens write them: `*` matches anything, `/` included; `_` and `%` are
    /// themselves. The limit counts only repositories that match.
    @Test func theSearchListsOnlyRepositoriesMatchingThePatternsUpToItsLimit() throws {
        let queries = try seeded { connection in
            let catalog = Catalog(connection: connection)
            for (name, tag) in [("other/app", "1"), ("other/a_p", "2"), ("other/a_p/deep", "3"), ("a/team/app", "4")] {
                try catalog.upsertTag(try RepositoryName(name), try TagName("v1"), digest: digest(tag), pushedAt: now)
            }
        }
        func names(_ patterns: [String]?, limit: Int = 10) throws -> [String] {
            try queries.repositories(containing: "", matchingAny: patterns, limit: limit).map(\.name)
        }
        #expect(try names(nil) == ["a/team/app", "other/a_p", "other/a_p/deep", "other/app", "team/app"])
        #expect(try names(["team/*"]) == ["team/app"])
        #expect(try names(["other/a_p"]) == ["other/a_p"], "_ matches only itself")
        #expect(try names(["other/a_p*"]) == ["other/a_p", "other/a_p/deep"])
        #expect(try names(["*/app"]) == ["a/team/app", "other/app", "team/app"])
        #expect(try names(["other/%", "*team*"], limit: 1) == ["a/team/app"], "% matches only itself")
        #expect(try names(["team/*"], limit: 1) == ["team/app"], "the limit counts matching repositories only")
        #expect(try names([]) == [])
    }

    /// Tags, their export pages and repositories come in byte order in a database whose own
    /// collation orders them otherwise (ICU's `en-US` puts `a` before `B` and `_` before `-` and
    /// digits): the names' columns are compared as bytes, so every server pages them alike.
    @Test func namesComeInByteOrderWhateverTheDatabasesCollation() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase(icuLocale: "en-US"))
        try Schema.migrate(connection)
        #expect(try connection.query("SELECT 'B' < 'a'").rows == [["f"]], "the database's own collation orders otherwise")
        let catalog = Catalog(connection: connection)
        let tags = ["a", "_x", "Z9", "a.b", "B", "a-b"]
        for (index, tag) in tags.enumerated() {
            try catalog.upsertTag(repository, try TagName(tag), digest: digest(String(index)), pushedAt: now)
        }
        for (index, name) in ["team/a_b", "team/a0", "team/a-b"].enumerated() {
            try catalog.upsertTag(try RepositoryName(name), try TagName("v1"), digest: digest(String(index)), pushedAt: now)
        }
        let queries = StatisticsQueries(connection: connection)
        let byteOrder = ["B", "Z9", "_x", "a", "a-b", "a.b"]
        #expect(try queries.tags(repository, order: .name, descending: false, limit: 10, offset: 0).map(\.tag) == byteOrder)
        var exported: [String] = []
        while true {
            let page = try queries.tags(repository, after: exported.last, limit: 2).map(\.tag)
            guard !page.isEmpty else { break }
            exported += page
        }
        #expect(exported == byteOrder, "export pages of two, each after the last tag of the one before")
        #expect(try queries.repositories(containing: "team/", limit: 10).map(\.name) == ["team/a-b", "team/a0", "team/a_b", "team/app"])
    }

    /// The dry runs and the sorted page take every catalog column from the catalog's primary keys
    /// (index-only scans): as written, a repository's catalog rows lie one to a page. The table
    /// rows fetched through an index are counted (`idx_tup_fetch`); whole-table scans, which the
    /// planner prefers for tables this small, are turned off.
    @Test func theDryRunsAndTheSortedPageReadTheCatalogFromItsKeysAlone() throws {
        var seededConnection: PostgresConnection?
        let queries = try seeded { seededConnection = $0 }
        let connection = try #require(seededConnection)
        try connection.query("VACUUM catalog_tags, catalog_manifests")  // index-only scans need pages marked all-visible
        try connection.execute(script: "SET enable_seqscan = off; SET enable_bitmapscan = off;")
        func catalogRowsFetched() throws -> Int {
            try connection.query("SELECT pg_stat_force_next_flush()")  // this backend's counts, published when the statement ends
            return try connection.query(
                "SELECT sum(idx_tup_fetch)::bigint AS n FROM pg_stat_user_tables WHERE relname IN ('catalog_tags', 'catalog_manifests')"
            ).namedRows[0].decode("n", as: Int.self)
        }
        let before = try catalogRowsFetched()
        #expect(try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).map(\.tag) == ["c", "b"])
        #expect(try queries.manifestPruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).isEmpty)
        #expect(try queries.tags(repository, order: .lastPulled, descending: false, limit: 10, offset: 0).map(\.tag) == ["c", "d", "b", "a"])
        #expect(try catalogRowsFetched() == before)
    }

    /// With the statistics tables split into partitions, every read of one repository plans (and
    /// so locks) only the repository's own partition of each: the repository's id is a constant
    /// to the planner, not a value found while the statement runs.
    @Test func aRepositorysReadsPlanOnlyItsOwnPartitionOfEachStatisticsTable() throws {
        var seededConnection: PostgresConnection?
        let queries = try seeded { seededConnection = $0 }
        let connection = try #require(seededConnection)
        #expect(try Schema.partitionStatistics(connection, partitions: 8))
        let digest = digest("a")
        // Each read, and the statistics tables it joins: tag_stats, manifest_stats.
        let reads: [(String, tables: [Int], () throws -> Int)] = [
            ("dry run", [1, 1], { try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).count }),
            ("untagged dry run", [1, 1], { try queries.manifestPruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).count }),
            ("tag page", [1, 1], { try queries.tags(repository, order: .lastPulled, descending: false, limit: 10, offset: 0).count }),
            ("manifest page", [1, 1], { try queries.manifests(repository, order: .pullCount, descending: true, limit: 10, offset: 0).count }),
            ("one tag", [1, 1], { try queries.tag(repository, try TagName("a")) == nil ? 0 : 1 }),
            ("one manifest", [1, 1], { try queries.manifestListing(repository, digest) == nil ? 0 : 1 }),
            ("platforms", [0, 1], { try queries.platforms(repository, index: digest).count }),
        ]
        for (name, tables, read) in reads {
            try connection.query("BEGIN")
            _ = try read()
            // Locks taken in a transaction are held to its end, those of planning included.
            let locked = try connection.query(
                """
                SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                WHERE l.pid = pg_backend_pid() AND c.relkind = 'r' AND c.relname ~ '^(tag|manifest)_stats_p[0-9]+$' ORDER BY 1
                """
            ).rows.compactMap { $0[0] }
            try connection.query("COMMIT")
            #expect([locked.filter { $0.hasPrefix("tag_") }.count, locked.filter { $0.hasPrefix("manifest_") }.count] == tables, "\(name): \(locked)")
        }
        #expect(try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).map(\.tag) == ["c", "b"])
    }

    /// a is pulled only by digest, b only resolved with HEAD by tag, c's manifest only polled with
    /// HEAD by digest — all today, all pushed 300 days ago; d and an untagged manifest are unused.
    @Test func aTagWhoseTagOrManifestIsUsedIsNeverACandidateAndUnusedUntaggedManifestsAre() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        let catalog = Catalog(connection: connection)
        let old = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 300 * day)
        for tag in ["a", "b", "c", "d"] {
            try catalog.upsertTag(repository, try TagName(tag), digest: digest(tag), pushedAt: old)
        }
        try catalog.upsertManifest(repository, digest("0"), pushedAt: old)
        try catalog.upsertManifest(repository, digest("1"), pushedAt: old)
        try reconcile(
            [
                PullEvent(repository: repository, reference: .digest(digest("a")), method: .get, time: now),
                PullEvent(repository: repository, reference: .tag(try TagName("b")), method: .head, servedDigest: digest("b"), time: now),
                PullEvent(repository: repository, reference: .digest(digest("c")), method: .head, time: now),
                PullEvent(repository: repository, reference: .digest(digest("1")), method: .head, time: now),
            ],
            batch: 1, into: connection
        )
        let queries = StatisticsQueries(connection: connection)
        let policy = PrunePolicy(notPulledDays: 30)
        #expect(try queries.pruneCandidates(repository, policy: policy, now: now).map(\.tag) == ["d"])
        #expect(try queries.manifestPruneCandidates(repository, policy: policy, now: now).map(\.digest) == [digest("0").value])
        let c = try #require(try queries.tag(repository, try TagName("c")))
        #expect(c.manifest?.pullCount == 0 && c.manifest?.lastPulledAt == nil && c.manifest?.lastUsedAt == now)
        #expect(try queries.pruneCandidates(repository, policy: PrunePolicy(maxPulls: 1), now: now).map(\.tag).sorted() == ["c", "d"],
                "a's manifest has a pull, b's tag has one (a HEAD by tag resolves it); c's manifest was only checked")
    }

    /// `old` and `new` point at manifest 1, `other` at manifest 2; all pushed 300 days ago, and both
    /// manifests pulled by digest 100 days ago — manifest 1's pulls written before its push, 2's
    /// after. Then `new` is pushed again yesterday, and manifest 2 pushed by digest: the push times
    /// come from the manifests' statistics rows, so each keeps every tag pointing at it.
    @Test func aManifestPushedLatelyKeepsEveryTagPointingAtItWhicheverWasWrittenFirst() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        let catalog = Catalog(connection: connection)
        let (old, longAgo, yesterday) = (
            Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 300 * day),
            Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 100 * day),
            Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - day)
        )
        let pulls = { (manifest: String, batch: Int64) in
            try self.reconcile(
                [PullEvent(repository: self.repository, reference: .digest(self.digest(manifest)), method: .get, time: longAgo)], batch: batch, into: connection
            )
        }
        try pulls("1", 1)
        for (tag, manifest) in [("old", "1"), ("new", "1"), ("other", "2")] {
            try catalog.upsertTag(repository, try TagName(tag), digest: digest(manifest), pushedAt: old)
        }
        try pulls("2", 2)
        let queries = StatisticsQueries(connection: connection)
        let policy = PrunePolicy(notPulledDays: 30)
        #expect(try queries.pruneCandidates(repository, policy: policy, now: now).map(\.tag) == ["new", "old", "other"])
        try catalog.upsertTag(repository, try TagName("new"), digest: digest("1"), pushedAt: yesterday)
        try catalog.upsertManifest(repository, digest("2"), pushedAt: yesterday)
        #expect(try queries.pruneCandidates(repository, policy: policy, now: now) == [])
        #expect(try queries.tag(repository, try TagName("other"))?.manifest?.pullCount == 1, "the push kept the pulls")
    }

    /// Two untagged image indexes pushed 300 days ago, each listing two platform manifests: one
    /// platform of index 8 was pulled by digest today, nothing of index 9 was.
    @Test func anUntaggedIndexIsInUseWhileAnyPlatformManifestIsAndPlatformManifestsGoWithTheirIndex() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        let catalog = Catalog(connection: connection)
        let old = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 300 * day)
        for name in ["8", "a", "b", "9", "c", "d"] { try catalog.upsertManifest(repository, digest(name), pushedAt: old) }
        // Links first from a push event's references (no platform), then from reading the index;
        // a later link without a platform keeps the one known.
        try catalog.link([IndexLink(repository: repository, index: digest("8"), child: digest("a"), platform: nil)])
        try catalog.link([
            IndexLink(repository: repository, index: digest("8"), child: digest("a"), platform: "linux/amd64"),
            IndexLink(repository: repository, index: digest("8"), child: digest("b"), platform: nil),
            IndexLink(repository: repository, index: digest("8"), child: digest("b"), platform: "linux/arm64/v8"),
            IndexLink(repository: repository, index: digest("9"), child: digest("c"), platform: "linux/amd64"),
            IndexLink(repository: repository, index: digest("9"), child: digest("d"), platform: "linux/arm64/v8"),
        ])
        try catalog.link([IndexLink(repository: repository, index: digest("8"), child: digest("a"), platform: nil)])
        try reconcile(Array(repeating: PullEvent(repository: repository, reference: .digest(digest("b")), method: .get, time: now), count: 3), batch: 1, into: connection)
        let queries = StatisticsQueries(connection: connection)

        let platforms = try queries.platforms(repository, index: digest("8"))
        #expect(platforms.map(\.platform) == ["linux/amd64", "linux/arm64/v8"])
        #expect(platforms.map(\.statistics.pullCount) == [0, 3])
        #expect(try queries.manifestListing(repository, digest("b"))?.indexes == [digest("8").value])
        #expect(try queries.manifestListing(repository, digest("b"))?.platform == "linux/arm64/v8")
        let byDays = try queries.manifestPruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).map(\.digest)
        #expect(byDays == [digest("9").value], "index 8 is in use through b; no platform manifest is offered alone")
        let byPulls = try queries.manifestPruneCandidates(repository, policy: PrunePolicy(maxPulls: 2), now: now).map(\.digest)
        #expect(byPulls == [digest("9").value], "b's 3 pulls keep index 8")
        // Once index 9 is deleted, its platform manifests stand alone.
        try catalog.deleteManifest(repository, digest("9"), at: now)
        let alone = try queries.manifestPruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).map(\.digest)
        #expect(alone == [digest("c").value, digest("d").value])
    }
}
