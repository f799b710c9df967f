import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import PullSketchCore
import PullSketchEvents
import PullSketchStore

/// The web UI: `/` searches repositories, `/repository/<repository>` lists its tags with last pull
/// and pull count, sortable and a page at a time, `/repository/<repository>/manifest/<digest>`
/// shows one manifest and the tags pointing at it. Readers sign in with their token (kept in an
/// HttpOnly cookie) unless `read_auth` is none.
struct WebPages: Sendable {
    private let library: MustacheLibrary

    init() {
        var library = MustacheLibrary()
        for (name, text) in [
            ("layout", WebTemplates.layout), ("search", WebTemplates.search), ("repository", WebTemplates.repository),
            ("manifest", WebTemplates.manifest), ("login", WebTemplates.login), ("problem", WebTemplates.problem),
        ] {
            try! library.register(text, named: name)  // fixed templates: a parse error is a programming error
        }
        self.library = library
    }

    func render(_ page: String, title: String, _ values: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let content = library.render(values, withTemplate: page) ?? ""
        let html = library.render(["title": title, "content": content], withTemplate: "layout") ?? ""
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

extension PullSketchNode {
    func searchPage(_ request: Request) async throws -> Response {
        guard statisticsEnabled else { return problem(.notFound, "Pull statistics are not enabled.") }
        guard let reader = reader(request) else { return pages.render("login", title: "Sign in", [:], status: .unauthorized) }
        let query: String
        do {
            query = try request.uri.queryParameters.text("q", maximumLength: RepositoryName.maximumLength) ?? ""
        } catch {
            return problem(.badRequest, error.message)
        }
        // The statement lists the first 200 the reader may read, not the first 200 of the registry;
        // the token's own matcher, which decides everywhere else, checks them again.
        let patterns = reader.repositoryPatterns
        let found = try await database.run {
            try StatisticsQueries(connection: $0).repositories(containing: query, matchingAny: patterns, limit: 200)
        }
        let now = clock.now()
        let visible = found.filter { (try? RepositoryName($0.name)).map(reader.mayRead) ?? false }
        let rows: [[String: Any]] = visible.map { summary in
            var row: [String: Any] = ["name": summary.name, "tags": summary.tags]
            if let time = summary.lastPulledAt { row["lastPulled"] = Self.timeValues(time, now: now) }
            return row
        }
        return pages.render("search", title: "Repositories", ["query": query, "repositories": rows, "hasRepositories": !rows.isEmpty])
    }

    func repositoryPage(_ request: Request, context: NodeRequestContext) async throws -> Response {
        guard statisticsEnabled else { return problem(.notFound, "Pull statistics are not enabled.") }
        guard let reader = reader(request) else { return pages.render("login", title: "Sign in", [:], status: .unauthorized) }
        let segments = context.parameters.getCatchAll().map(String.init)
        // A digest holds a colon, which no repository name does: `…/manifest/<digest>` is a manifest.
        if segments.count >= 3, segments[segments.count - 2] == "manifest", let digest = try? Digest(segments[segments.count - 1]) {
            return try await manifestPage(segments.dropLast(2).joined(separator: "/"), digest, reader: reader)
        }
        let name = segments.joined(separator: "/")
        guard let repository = try? RepositoryName(name), reader.mayRead(repository) else { return notFound(name) }
        let page: TagPage
        do {
            page = try TagPage(request.uri.queryParameters)
        } catch {
            return problem(.badRequest, error.message)
        }
        let (tags, total, unattributed, knownSince) = try await database.run {
            let queries = StatisticsQueries(connection: $0)
            return (
                try queries.tags(repository, order: page.order, descending: page.descending, limit: page.limit, offset: page.offset),
                try queries.tagCount(repository),
                try queries.unattributedPulls(repository),
                try PullKnowledge(connection: $0).since()
            )
        }
        let now = clock.now()
        let rows: [[String: Any]] = tags.map { tag in
            // Absent keys, not nil values: Mustache renders the inverted sections for them.
            var row: [String: Any] = ["tag": tag.tag, "count": CompactPullCount.string(tag.pullCount), "exactCount": tag.pullCount]
            if let time = tag.lastPulledAt { row["lastPulled"] = Self.timeValues(time, now: now) }
            if let time = [tag.lastUsedAt, tag.manifest?.lastUsedAt].compactMap({ $0 }).max() {
                row["lastUsed"] = Self.timeValues(time, now: now)
            }
            if let digest = tag.currentDigest { row["digest"] = Self.digestValues(digest, repository: repository) }
            if tag.pullCountError > 0 { row["approximate"] = Self.approximation(tag.pullCount, tag.pullCountError) }
            return row
        }
        let sort = "sort=\(page.order.rawValue)&order=\(page.descending ? "desc" : "asc")&limit=\(page.limit)"
        // Each column links to its own sort; the active column's link flips the order.
        func link(_ order: TagOrder) -> (active: String, order: String) {
            guard page.order == order else { return ("", order == .name ? "asc" : "desc") }
            return ("active", page.descending ? "asc" : "desc")
        }
        let labels: [TagOrder: String] = [.lastPulled: "last pulled", .pullCount: "pull count", .name: "name"]
        let lastPage = max(1, (total + page.limit - 1) / page.limit)
        var values: [String: Any] = [
            "repository": repository.value, "tags": rows, "hasTags": !rows.isEmpty,
            "shown": rows.isEmpty ? "No tags" : "Tags \(page.offset + 1)–\(page.offset + rows.count) of \(total)",
            "total": "\(total) tag\(total == 1 ? "" : "s")",
            "sortLabel": "\(labels[page.order]!), \(page.descending ? "descending" : "ascending")",
            "nameActive": link(.name).active, "nameOrder": link(.name).order,
            "lastActive": link(.lastPulled).active, "lastOrder": link(.lastPulled).order,
            "countActive": link(.pullCount).active, "countOrder": link(.pullCount).order,
            "limit": page.limit, "csv": "/api/v1/repository/\(repository.value)/pull_statistics.csv",
        ]
        if page.page > 1 { values["previous"] = "?\(sort)&page=\(min(page.page - 1, lastPage))" }
        if page.page < lastPage { values["next"] = "?\(sort)&page=\(page.page + 1)" }
        if lastPage > 1 {
            values["pages"] = ["current": page.page, "last": lastPage, "first": "?\(sort)&page=1", "final": "?\(sort)&page=\(lastPage)"]
        }
        if let knownSince { values["knownSince"] = Self.timeValues(knownSince, now: now) }
        if unattributed > 0 { values["unattributed"] = ["count": CompactPullCount.string(UInt64(unattributed)), "exact": unattributed] }
        return pages.render("repository", title: repository.value, values)
    }

    /// One manifest: its pulls and uses, the tags pointing at it now, and for an image index its
    /// platform manifests (for a platform manifest, the indexes listing it).
    private func manifestPage(_ name: String, _ digest: Digest, reader: Reader) async throws -> Response {
        guard let repository = try? RepositoryName(name), reader.mayRead(repository) else { return notFound(name) }
        let (listing, tags, platforms) = try await database.run {
            let queries = StatisticsQueries(connection: $0)
            return (
                try queries.manifestListing(repository, digest), try queries.tags(repository, pointingAt: digest),
                try queries.platforms(repository, index: digest)
            )
        }
        guard let listing else { return notFound("\(name)@\(digest.value)") }
        let now = clock.now()
        let statistics = listing.statistics
        var values: [String: Any] = [
            "repository": repository.value, "digest": digest.value, "count": CompactPullCount.string(statistics.pullCount),
            "exactCount": statistics.pullCount, "untagged": listing.tags.isEmpty, "hasTags": !tags.isEmpty,
            "tags": tags.map { tag -> [String: Any] in
                var row: [String: Any] = ["tag": tag.tag, "count": CompactPullCount.string(tag.pullCount)]
                if let time = tag.lastPulledAt { row["lastPulled"] = Self.timeValues(time, now: now) }
                return row
            },
            "hasIndexes": !listing.indexes.isEmpty, "indexes": listing.indexes.map { Self.digestValues($0, repository: repository) },
            "hasPlatforms": !platforms.isEmpty,
            "platforms": platforms.map { platform -> [String: Any] in
                let link = Self.digestValues(platform.statistics.digest, repository: repository)
                var row: [String: Any] = [
                    "digestLink": link["link"]!, "digestFull": link["full"]!, "digestShort": link["short"]!,
                    "count": CompactPullCount.string(platform.statistics.pullCount),
                ]
                if let name = platform.platform { row["platformName"] = name }
                if let time = platform.statistics.lastPulledAt { row["lastPulled"] = Self.timeValues(time, now: now) }
                return row
            },
        ]
        // Names the tag rows do not use: Mustache looks a key a row lacks up in the page.
        if let time = statistics.lastPulledAt { values["manifestLastPulled"] = Self.timeValues(time, now: now) }
        if let time = statistics.lastUsedAt { values["manifestLastUsed"] = Self.timeValues(time, now: now) }
        if let time = listing.pushedAt { values["pushed"] = Self.timeValues(time, now: now) }
        if let tag = listing.lastTagPulled { values["lastTagPulled"] = tag }
        if let platform = listing.platform { values["ownPlatform"] = platform }
        if statistics.pullCountError > 0 { values["approximate"] = Self.approximation(statistics.pullCount, statistics.pullCountError) }
        return pages.render("manifest", title: "\(repository.value)@\(String(digest.value.prefix(19)))", values)
    }

    /// A page saying what was wrong, in place of the one asked for.
    private func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let title = status == .badRequest ? "Bad request" : "Not found"
        return pages.render("problem", title: title, ["heading": title, "message": message], status: status)
    }

    private func notFound(_ query: String) -> Response {
        pages.render("search", title: "Not found", ["query": query, "repositories": [[String: Any]](), "hasRepositories": false], status: .notFound)
    }

    /// A digest as the UI shows it: short, the full one on hover, linking to its manifest page.
    static func digestValues(_ digest: String, repository: RepositoryName) -> [String: String] {
        ["full": digest, "short": String(digest.split(separator: ":").last?.prefix(12) ?? ""), "link": "/repository/\(repository.value)/manifest/\(digest)"]
    }

    /// The ≈ mark of an estimated count: its error and the range the truth lies in.
    static func approximation(_ count: UInt64, _ error: UInt64) -> [String: Any] {
        ["error": CompactPullCount.string(error), "low": count - min(count, error), "high": count]
    }

    /// `POST /login` with `token=…`: a valid reader token is kept in an HttpOnly, SameSite=Strict
    /// cookie, `Secure` when the request came over TLS per `forwarded_proto_header`. An address
    /// with too many failed sign-ins is refused (429) until they age out.
    func login(_ request: Request, context: NodeRequestContext) async throws -> Response {
        guard case .tokens(let tokens) = configuration.readAuth else { return Response(status: .seeOther, headers: [.location: "/"]) }
        let address = context.remoteAddress?.ipAddress ?? "unknown"
        if let wait = signIns.wait(for: address) {
            let seconds = String(max(1, wait.components.seconds + (wait.components.attoseconds > 0 ? 1 : 0)))
            var response = pages.render("login", title: "Sign in", ["retryAfter": seconds], status: .tooManyRequests)
            response.headers[.retryAfter] = seconds
            return response
        }
        let body = try await request.body.collect(upTo: 4_096)
        let form = String(buffer: body)
        let token = form.split(separator: "&").compactMap { pair -> String? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0] == "token" else { return nil }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }.first ?? ""
        guard tokens.contains(where: { constantTimeEqual($0.token, token) }) else {
            signIns.recordFailure(from: address)
            return pages.render("login", title: "Sign in", ["failed": true], status: .unauthorized)
        }
        var response = Response(status: .seeOther, headers: [.location: "/"])
        response.setCookie(Cookie(name: "pullsketch_token", value: token, path: "/", secure: cameOverTLS(request), httpOnly: true, sameSite: .strict))
        return response
    }

    /// Whether the client reached the node over TLS: a TLS-terminating proxy says so in the
    /// configured header (`X-Forwarded-Proto: https`); the node itself speaks plain HTTP.
    func cameOverTLS(_ request: Request) -> Bool {
        guard let name = configuration.forwardedProtoHeader, let header = HTTPField.Name(name) else { return false }
        return request.headers[header]?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces).lowercased() == "https"
    }

    /// A time as the UI shows it: relative, with the UTC time on hover.
    static func timeValues(_ time: Timestamp, now: Timestamp) -> [String: String] {
        ["relative": relative(time, now: now), "utc": RFC3339.format(time)]
    }

    static func relative(_ time: Timestamp, now: Timestamp) -> String {
        let seconds = max(0, (now.millisecondsSinceEpoch - time.millisecondsSinceEpoch) / 1_000)
        let steps: [(Int64, String)] = [(365 * 86_400, "year"), (30 * 86_400, "month"), (86_400, "day"), (3_600, "hour"), (60, "minute")]
        for (size, unit) in steps where seconds >= size {
            let count = seconds / size
            return "\(count) \(unit)\(count == 1 ? "" : "s") ago"
        }
        return "just now"
    }
}
