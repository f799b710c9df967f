import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PullSketchPostgres
import PullSketchStore
import PullSketchSync
import PullSketchTestSupport
import Synchronization
import Testing

/// `DistributionCatalogSync` against a registry that pages its catalog as Quay's `/v2/_catalog`
/// does: repositories in the order they were created, not by name, and the next page named by an
/// opaque token in the `Link` header; `last` is read as a token too, so a name there is no token
/// and answers the first page again. Quay cannot run here, so this stand-in answers the three
/// calls a sync makes (its tag lists page by `last`, as Quay's do); the paging is the point.
@Suite(.postgresServer) struct TokenPagedRegistryTests {
    /// Repositories in creation order, each with `tags` tags.
    static let repositories = ["zeta/app", "acme/web", "mid/one", "beta/two", "acme/api"]
    static let tags = 5
    /// Catalog requests the stand-in answers before it fails every one: a sync that asks for the
    /// same page again and again ends with an error instead of running forever.
    static let catalogRequestLimit = 20

    /// A digest of its own for each repository's tag.
    static func digest(_ repository: String, _ tag: String) -> String {
        let number = repositories.firstIndex(of: repository)! * 1_000 + Int(tag.dropFirst())!
        return "sha256:" + String(repeating: "0", count: 56) + String(format: "%08x", number)
    }

    /// Catalog requests answered.
    final class Counter: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func increment() -> Int { count.withLock { $0 += 1; return $0 } }
        func reset() { count.withLock { $0 = 0 } }
    }

    /// The stand-in registry, and the number of catalog requests it has answered.
    static func registry(pageSize: Int = 2) -> (Application<RouterResponder<BasicRequestContext>>, Counter) {
        let router = Router()
        let catalogRequests = Counter()
        let digests = Dictionary(uniqueKeysWithValues: repositories.flatMap { repository in
            (0..<tags).map { ("\(repository):v\($0)", digest(repository, "v\($0)")) }
        })
        router.get("/v2/_catalog") { request, _ -> Response in
            guard catalogRequests.increment() <= catalogRequestLimit else { return Response(status: .internalServerError) }
            let query = request.uri.queryParameters
            // A token is "page-<index>" in base64; anything else (a repository name in `last`) starts over.
            let token = (query["next_page"] ?? query["last"]).flatMap { Data(base64Encoded: String($0)) }.flatMap { String(decoding: $0, as: UTF8.self) }
            let start = token.flatMap { $0.hasPrefix("page-") ? Int($0.dropFirst(5)) : nil } ?? 0
            let end = min(start + pageSize, repositories.count)
            var headers: HTTPFields = [:]
            if end < repositories.count {
                let next = Data("page-\(end)".utf8).base64EncodedString()
                    .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                headers[HTTPField.Name("Link")!] = "<http://\(request.head.authority!)/v2/_catalog?n=\(pageSize)&next_page=\(next)>; rel=\"next\""
            }
            let names = repositories[start..<end].map { "\"\($0)\"" }.joined(separator: ",")
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"repositories": [\#(names)]}"#)))
        }
        router.get("/v2/**") { request, _ -> Response in
            let path = request.uri.path
            guard path.hasSuffix("/tags/list") else { return Response(status: .notFound) }
            let repository = String(path.dropFirst("/v2/".count).dropLast("/tags/list".count))
            let names = (0..<tags).map { "v\($0)" }.filter { $0 > (request.uri.queryParameters["last"].map(String.init) ?? "") }.prefix(2)
            var headers: HTTPFields = [:]
            if let last = names.last, last != "v\(tags - 1)" {
                headers[HTTPField.Name("Link")!] = "</v2/\(repository)/tags/list?n=2&last=\(last)>; rel=\"next\""
            }
            let list = names.map { "\"\($0)\"" }.joined(separator: ",")
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"name": "\#(repository)", "tags": [\#(list)]}"#)))
        }
        router.head("/v2/**") { request, _ -> Response in
            let parts = request.uri.path.dropFirst("/v2/".count).components(separatedBy: "/manifests/")
            guard parts.count == 2, let digest = digests["\(parts[0]):\(parts[1])"] else { return Response(status: .notFound) }
            return Response(status: .ok, headers: [
                HTTPField.Name("Docker-Content-Digest")!: digest, .contentType: "application/vnd.oci.image.manifest.v1+json",
            ])
        }
        return (Application(router: router), catalogRequests)
    }

    func statisticsDatabase() throws -> String {
        let database = try PostgresServer.current!.makeDatabase()
        try Schema.migrate(try PostgresConnection(database))
        return database
    }

    /// Live catalog tags as "repository:tag" → digest.
    func catalog(_ database: String) throws -> [String: String] {
        let rows = try PostgresConnection(database).query(
            "SELECT r.name || ':' || c.tag, c.digest FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id WHERE c.deleted_at IS NULL"
        ).rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0[1]!) })
    }

    @Test func aCatalogPagedByTheRegistrysOwnTokensIsFollowedToItsEndAndResumedOnItsPage() async throws {
        let (registry, catalogRequests) = Self.registry()
        try await registry.test(.live) { client in
            let base = URL(string: "http://127.0.0.1:\(client.port!)")!
            let database = try statisticsDatabase()
            let pool = try BlockingDatabase(database, connections: 1)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-token-paging-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let checkpointFile = directory.appendingPathComponent("checkpoint.json")
            func sync() async throws -> SyncProgress {
                var sync = DistributionCatalogSync(client: RegistryClient(base: base, requestsPerSecond: 1_000), database: pool, checkpointFile: checkpointFile)
                sync.pageSize = 2
                return try await sync.run()
            }

            let progress = try await sync()
            #expect(progress.repositories == Self.repositories.count && progress.skipped == 0)
            #expect(catalogRequests.value == 3, "three pages of two, each asked for once")
            let expected = Dictionary(uniqueKeysWithValues: Self.repositories.flatMap { repository in
                (0..<Self.tags).map { ("\(repository):v\($0)", Self.digest(repository, "v\($0)")) }
            })
            #expect(try catalog(database) == expected, "every repository's every tag, through pages of two")
            let finished = try SyncCheckpoint.load(checkpointFile, source: base.absoluteString)
            #expect(finished.position == "acme/api" && finished.page?.contains("next_page=") == true, "the last page's address is kept")

            // Stopped after mid/one, the first name of the second page: the sync goes back to that
            // page by its token and does the rest of it, and the page after.
            let secondPage = "http://127.0.0.1:\(client.port!)/v2/_catalog?n=2&next_page=" + Data("page-2".utf8).base64EncodedString()
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            try SyncCheckpoint(source: base.absoluteString, position: "mid/one", page: secondPage).save(checkpointFile)
            catalogRequests.reset()
            #expect(try await sync().repositories == 2, "beta/two and acme/api")
            #expect(catalogRequests.value == 2)
            #expect(try catalog(database) == expected, "a second sync changes nothing")
        }
    }

    /// Credentials go with every request, so a next page's link naming another host (a registry
    /// behind a proxy writes its public name) is read from this registry, by its path and query;
    /// a link to the page itself is an error, not a loop.
    @Test func aNextPageIsReadFromThisRegistryAndALinkToThePageItselfIsRefused() async throws {
        let router = Router()
        router.get("/v2/_catalog") { request, _ -> Response in
            let link = request.uri.queryParameters["n"] == "1" ? "<http://registry.example:9/v2/_catalog?n=3&next_page=a%2Fb>" : "</v2/_catalog?n=2>"
            return Response(
                status: .ok, headers: [HTTPField.Name("Link")!: link + "; rel=\"next\""],
                body: .init(byteBuffer: ByteBuffer(string: #"{"repositories": ["a/b"]}"#))
            )
        }
        try await Application(router: router).test(.live) { client in
            let base = "http://127.0.0.1:\(client.port!)"
            let registry = RegistryClient(base: URL(string: base)!, credentials: .bearer("secret"), requestsPerSecond: 1_000)
            let first = try await registry.repositories(.after(nil, pageSize: 1))
            #expect(first.next?.absoluteString == base + "/v2/_catalog?n=3&next_page=a%2Fb")
            await #expect { try await registry.repositories(.after(nil, pageSize: 2)) } throws: {
                String(describing: $0).contains("the next page's link is the page itself")
            }
            await #expect(throws: RegistryClientError.self, "an address on another host is never read") {
                try await registry.repositories(.at(URL(string: "http://registry.example:9/v2/_catalog")!))
            }
        }
    }
}
