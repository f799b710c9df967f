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
}
