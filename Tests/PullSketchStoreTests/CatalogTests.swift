import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Testing

/// Catalog changes from several nodes arrive in any order; the catalog orders them by event time.
@Suite(.postgresServer) struct CatalogTests {
    let repository = try! RepositoryName("team/app")
    let tag = try! TagName("v1")
    let first = try! Digest("sha256:" + String(repeating: "a", count: 64))
    let second = try! Digest("sha256:" + String(repeating: "b", count: 64))

    func catalog() throws -> (Catalog, PostgresConnection) {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        return (Catalog(connection: connection), connection)
    }

    func time(_ seconds: Int64) -> Timestamp {
        Timestamp(millisecondsSinceEpoch: 1_800_000_000_000 + seconds * 1_000)
    }

    /// The tag's catalog row: digest and whether it is deleted.
    func row(_ connection: PostgresConnection) throws -> [String?] {
        try connection.query("SELECT digest, (deleted_at IS NOT NULL)::text FROM catalog_tags WHERE tag = $1", [tag.value]).rows.first ?? []
    }

    @Test func aLatePushOlderThanTheDeletionDoesNotReviveTheTag() throws {
        let (catalog, connection) = try catalog()
        try catalog.upsertTag(repository, tag, digest: first, pushedAt: time(1))
        try catalog.deleteTag(repository, tag, at: time(3))
        try catalog.upsertTag(repository, tag, digest: second, pushedAt: time(2))  // arrived late
        #expect(try row(connection) == [second.value, "true"])  // it did point there, until the deletion
        try catalog.upsertTag(repository, tag, digest: first, pushedAt: time(4))  // a real re-push
        #expect(try row(connection) == [first.value, "false"])
    }

    @Test func aLateDeletionOlderThanTheLatestPushDoesNotHideTheTag() throws {
        let (catalog, connection) = try catalog()
        try catalog.upsertTag(repository, tag, digest: first, pushedAt: time(1))
        try catalog.upsertTag(repository, tag, digest: second, pushedAt: time(3))
        try catalog.deleteTag(repository, tag, at: time(2))  // arrived late
        #expect(try row(connection) == [second.value, "false"])
    }

    @Test func aDeletionThatArrivesBeforeItsPushIsKept() throws {
        let (catalog, connection) = try catalog()
        try catalog.deleteTag(repository, tag, at: time(2))
        try catalog.upsertTag(repository, tag, digest: first, pushedAt: time(1))
        #expect(try row(connection) == [first.value, "true"])
        try catalog.deleteManifest(repository, second, at: time(2))
        try catalog.upsertManifest(repository, second, pushedAt: time(1))
        let manifest = try connection.query("SELECT (deleted_at IS NOT NULL)::text FROM catalog_manifests WHERE digest = $1", [second.value]).rows
        #expect(manifest == [["true"]])
    }

    @Test func aTagPointsAtItsLatestPushWhateverTheArrivalOrder() throws {
        let (catalog, connection) = try catalog()
        try catalog.upsertTag(repository, tag, digest: second, pushedAt: time(2))
        try catalog.upsertTag(repository, tag, digest: first, pushedAt: time(1))  // arrived late
        #expect(try row(connection) == [second.value, "false"])
    }

    /// The catalog's rows, tags and manifests, as text.
    func observe(_ catalog: Catalog, _ digest: Digest, at seconds: Int64) throws {
        try catalog.observe([ObservedTag(repository: repository, tag: tag, digest: digest, time: time(seconds))])
    }

    /// The tag's push time in seconds after `time(0)`, or nil.
    func pushed(_ connection: PostgresConnection) throws -> Int64? {
        let text = try connection.query(
            "SELECT (extract(epoch from pushed_at) * 1000)::bigint FROM catalog_tags WHERE tag = $1", [tag.value]
        ).rows.first?[0] ?? nil
        return text.flatMap(Int64.init).map { ($0 - 1_800_000_000_000) / 1_000 }
    }

    @Test func aSyncSeeingAKnownTagKeepsItsPushTimeAndANewDigestIsAPushAtTheObservation() throws {
        let (catalog, connection) = try catalog()
        try catalog.upsertTag(repository, tag, digest: first, pushedAt: time(1))
        try observe(catalog, first, at: 10)
        #expect(try row(connection) == [first.value, "false"] && pushed(connection) == 1, "seen later, pushed then")
        try observe(catalog, second, at: 20)
        #expect(try row(connection) == [second.value, "false"] && pushed(connection) == 20, "retargeted by a push the node missed")
        let manifests = try connection.query("SELECT digest, (extract(epoch from pushed_at))::bigint - 1800000000 FROM catalog_manifests ORDER BY 1").rows
        #expect(manifests == [[first.value, "1"], [second.value, "20"]])
    }

    @Test func whatTheRegistryReportsAfterTheSyncSawATagWins() throws {
        let (catalog, connection) = try catalog()
        try catalog.deleteTag(repository, tag, at: time(5))
        try observe(catalog, first, at: 3)  // listed just before the deletion, written after it
        #expect(try row(connection) == [nil, "true"], "the newer deletion stands")
        try catalog.upsertTag(repository, tag, digest: second, pushedAt: time(8))
        try observe(catalog, first, at: 7)  // a sync that saw the tag before its newer push
        #expect(try row(connection) == [second.value, "false"] && pushed(connection) == 8)
        try catalog.deleteTag(repository, tag, at: time(9))
        try observe(catalog, first, at: 12)  // pushed again after the deletion, unreported
        #expect(try row(connection) == [first.value, "false"] && pushed(connection) == 12)
    }

    func rows(_ connection: PostgresConnection) throws -> [[String?]] {
        try connection.query("""
            SELECT 't', tag, digest, pushed_at::text, deleted_at::text FROM catalog_tags
            UNION ALL SELECT 'm', digest, NULL, pushed_at::text, deleted_at::text FROM catalog_manifests ORDER BY 1, 2
            """).rows
    }

    @Test func aBatchInAnyOrderEndsWhereTheChangesOneByOneEnd() throws {
        var generator = SeededGenerator(seed: 23)
        let tags = try (0..<4).map { try TagName("v\($0)") }
        let digests = [first, second]
        var changes: [(inout CatalogBatch) -> Void] = []
        // Distinct times: two pushes of one tag at the same instant are ordered by arrival.
        for seconds in (0..<200 as Range<Int64>).shuffled(using: &generator) {
            let at = time(seconds)
            let (tag, digest) = (tags.randomElement(using: &generator)!, digests.randomElement(using: &generator)!)
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: changes.append { $0.pushTag(repository, tag, digest: digest, at: at) }
            case 1: changes.append { $0.pushManifest(repository, digest, at: at) }
            case 2: changes.append { $0.deleteTag(repository, tag, at: at) }
            default: changes.append { $0.deleteManifest(repository, digest, at: at) }
            }
        }
        let (oneByOne, expected) = try catalog()
        for change in changes {
            var batch = CatalogBatch()
            change(&batch)
            try oneByOne.apply(batch)
        }
        for split in [1, 3, 7] {
            let (catalog, connection) = try catalog()
            let shuffled = changes.shuffled(using: &generator)
            for start in stride(from: 0, to: shuffled.count, by: (shuffled.count + split - 1) / split) {
                var batch = CatalogBatch()
                for change in shuffled[start..<min(shuffled.count, start + (shuffled.count + split - 1) / split)] { change(&batch) }
                try catalog.apply(batch)
            }
            #expect(try rows(connection) == rows(expected), "\(split) batches")
            #expect(try manifestsWhoseStatisticsLackTheirTimes(connection) == [], "\(split) batches")
        }
        #expect(try manifestsWhoseStatisticsLackTheirTimes(expected) == [])
    }

    /// Catalog manifests with a push time whose statistics row is missing or carries other push
    /// or deletion times (schema version 11: the dry run reads a manifest's push time there).
    func manifestsWhoseStatisticsLackTheirTimes(_ connection: PostgresConnection) throws -> [[String?]] {
        try connection.query("""
            SELECT c.digest FROM catalog_manifests c LEFT JOIN manifest_stats s USING (repository_id, digest)
            WHERE c.pushed_at IS NOT NULL
                AND (s.digest IS NULL OR s.pushed_at IS DISTINCT FROM c.pushed_at OR s.deleted_at IS DISTINCT FROM c.deleted_at)
            """).rows
    }

    @Test func aSyncsManifestsCarryTheirPushTimesIntoTheirStatisticsRows() throws {
        let (catalog, connection) = try catalog()
        func statistics() throws -> [[String?]] {
            try connection.query(
                "SELECT digest, (extract(epoch from pushed_at))::bigint - 1800000000, (deleted_at IS NOT NULL)::text, pull_count FROM manifest_stats ORDER BY 1"
            ).rows
        }
        try observe(catalog, first, at: 100)
        try observe(catalog, first, at: 60)
        try catalog.deleteManifest(repository, second, at: time(50))
        try observe(catalog, second, at: 40)
        #expect(
            try statistics() == [[first.value, "60", "false", "0"]],
            "the earliest sighting; the deletion stands, and a manifest never pushed needs no statistics row"
        )
        try observe(catalog, second, at: 70)
        #expect(try statistics() == [[first.value, "60", "false", "0"], [second.value, "70", "false", "0"]], "seen again after its deletion")
        #expect(try manifestsWhoseStatisticsLackTheirTimes(connection) == [])
    }

    /// A sync that sees the registry again, unchanged, writes no row — catalog or statistics: each
    /// keeps the row version it had. Rows whose times moved (deleted, then seen again) are written.
    @Test func aSyncSeeingTheRegistryAgainUnchangedWritesNoRow() throws {
        let (catalog, connection) = try catalog()
        let other = try TagName("v2")
        func sync(_ firstSeen: Int64, _ secondSeen: Int64) throws {
            try catalog.observe([
                ObservedTag(repository: repository, tag: tag, digest: first, time: time(firstSeen)),
                ObservedTag(repository: repository, tag: other, digest: second, time: time(secondSeen)),
            ])
        }
        /// Each row's version, by table and name.
        func versions() throws -> [String: String] {
            let rows = try connection.query(
                """
                SELECT 'catalog_tags ' || tag, xmin::text FROM catalog_tags
                UNION ALL SELECT 'catalog_manifests ' || digest, xmin::text FROM catalog_manifests
                UNION ALL SELECT 'manifest_stats ' || digest, xmin::text FROM manifest_stats
                """
            ).rows
            return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0[1]!) })
        }
        func rows(of names: [String], in versions: [String: String]) -> [String: String] {
            versions.filter { row in names.contains { row.key.hasSuffix(" " + $0) } }
        }
        try sync(100, 100)
        let before = try versions()
        #expect(before.count == 6)
        try sync(100, 120)
        #expect(try versions() == before, "seen again, later: every row as it was")
        try catalog.deleteTag(repository, other, at: time(130))
        try catalog.deleteManifest(repository, second, at: time(130))
        let deleted = try versions()
        try sync(100, 140)
        let seenAgain = try versions()
        let kept = [tag.value, first.value], moved = [other.value, second.value]
        #expect(rows(of: kept, in: before).count == 3 && rows(of: moved, in: seenAgain).count == 3)
        #expect(rows(of: kept, in: seenAgain) == rows(of: kept, in: before))
        #expect(rows(of: moved, in: seenAgain).allSatisfy { deleted[$0.key] != $0.value }, "seen after their deletion: written")
        #expect(try manifestsWhoseStatisticsLackTheirTimes(connection) == [])
        #expect(try connection.query("SELECT count(*) FROM catalog_tags WHERE deleted_at IS NULL").rows == [["2"]])
    }

    /// A push of a manifest pushed before, at no later time, leaves its statistics row's version
    /// as it was; a later push writes it.
    @Test func aPushSeenBeforeLeavesItsManifestsStatisticsRowAsItWas() throws {
        let (catalog, connection) = try catalog()
        func version() throws -> String? {
            try connection.query("SELECT xmin::text FROM manifest_stats WHERE digest = $1", [first.value]).rows.first?[0] ?? nil
        }
        try catalog.upsertManifest(repository, first, pushedAt: time(100))
        let pushed = try #require(try version())
        try catalog.upsertManifest(repository, first, pushedAt: time(90))
        try catalog.upsertManifest(repository, first, pushedAt: time(100))
        #expect(try version() == pushed)
        try catalog.upsertManifest(repository, first, pushedAt: time(110))
        #expect(try version() != pushed)
        #expect(try manifestsWhoseStatisticsLackTheirTimes(connection) == [])
    }
}

/// One change at a time, as a batch of one.
extension Catalog {
    func upsertTag(_ repository: RepositoryName, _ tag: TagName, digest: Digest, pushedAt time: Timestamp) throws {
        try apply { $0.pushTag(repository, tag, digest: digest, at: time) }
    }

    func upsertManifest(_ repository: RepositoryName, _ digest: Digest, pushedAt time: Timestamp) throws {
        try apply { $0.pushManifest(repository, digest, at: time) }
    }

    func deleteTag(_ repository: RepositoryName, _ tag: TagName, at time: Timestamp) throws {
        try apply { $0.deleteTag(repository, tag, at: time) }
    }

    func deleteManifest(_ repository: RepositoryName, _ digest: Digest, at time: Timestamp) throws {
        try apply { $0.deleteManifest(repository, digest, at: time) }
    }

    private func apply(_ change: (inout CatalogBatch) -> Void) throws {
        var batch = CatalogBatch()
        change(&batch)
        try apply(batch)
    }
}
