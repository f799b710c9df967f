import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import PullSketchCore
import PullSketchEvents
import PullSketchStore

/// The web UI: `/` searches repositories, `/repository/<repository>` lists its tags with last pull
/// and pull count, sortable. Readers sign in with their token (kept in an HttpOnly cookie) unless
/// `read_auth` is none.
struct WebPages: Sendable {
    private let library: MustacheLibrary

    init() {
        var library = MustacheLibrary()
        for (name, text) in [("layout", WebTemplates.layout), ("search", WebTemplates.search), ("repository", WebTemplates.repository), ("login", WebTemplates.login)] {
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
        guard statisticsEnabled else { return JSONResponse.error(.notFound, "pull statistics are not enabled") }
        guard let reader = reader(request) else { return pages.render("login", title: "Sign in", [:], status: .unauthorized) }
        let query: String
        do {
            query = try request.uri.queryParameters.text("q", maximumLength: RepositoryName.maximumLength) ?? ""
        } catch {
            return JSONResponse.error(.badRequest, error.message)
        }
        let found = try await database.run { try StatisticsQueries(connection: $0).repositories(containing: query, limit: 200) }
        let now = Timestamp.now()
        let visible = found.filter { (try? RepositoryName($0.name)).map(reader.mayRead) ?? false }
        let rows: [[String: Any]] = visible.map { summary in
            var row: [String: Any] = ["name": summary.name, "tags": summary.tags]
            if let time = summary.lastPulledAt { row["lastPulled"] = Self.timeValues(time, now: now) }
            return row
        }
        return pages.render("search", title: "Repositories", ["query": query, "repositories": rows, "hasRepositories": !rows.isEmpty])
    }

    func repositoryPage(_ request: Request, context: NodeRequestContext) async throws -> Response {
        guard statisticsEnabled else { return JSONResponse.error(.notFound, "pull statistics are not enabled") }
        guard let reader = reader(request) else { return pages.render("login", title: "Sign in", [:], status: .unauthorized) }
        let name = context.parameters.getCatchAll().joined(separator: "/")
        guard let repository = try? RepositoryName(name), reader.mayRead(repository) else {
            return pages.render("search", title: "Not found", ["query": name, "repositories": [[String: Any]](), "hasRepositories": false], status: .notFound)
        }
        let page: TagPage
        do {
            page = try TagPage(request.uri.queryParameters)
        } catch {
            return JSONResponse.error(.badRequest, error.message)
        }
        let (tags, unattributed) = try await database.run {
            let queries = StatisticsQueries(connection: $0)
            return (
                try queries.tags(repository, order: page.order, descending: page.descending, limit: TagPage.maximumLimit, offset: 0),
                try queries.unattributedPulls(repository)
            )
        }
        let now = Timestamp.now()
        let rows: [[String: Any]] = tags.map { tag in
            // Absent keys, not nil values: Mustache renders the inverted sections for them.
            var row: [String: Any] = ["tag": tag.tag, "count": CompactPullCount.string(tag.pullCount), "exactCount": tag.pullCount]
            if let time = tag.lastPulledAt { row["lastPulled"] = Self.timeValues(time, now: now) }
            if let time = [tag.lastUsedAt, tag.manifest?.lastUsedAt].compactMap({ $0 }).max() {
                row["lastUsed"] = Self.timeValues(time, now: now)
            }
            if let digest = tag.currentDigest {
                row["digest"] = ["full": digest, "short": String(digest.split(separator: ":").last?.prefix(12) ?? "")]
            }
            if tag.pullCountError > 0 {
                row["approximate"] = [
                    "error": CompactPullCount.string(tag.pullCountError),
                    "low": tag.pullCount - min(tag.pullCount, tag.pullCountError), "high": tag.pullCount,
                ]
            }
            return row
        }
        // Each column links to its own sort; the active column's link flips the order.
        func link(_ order: TagOrder) -> (active: String, order: String) {
            guard page.order == order else { return ("", order == .name ? "asc" : "desc") }
            return ("active", page.descending ? "asc" : "desc")
        }
        let labels: [TagOrder: String] = [.lastPulled: "last pulled", .pullCount: "pull count", .name: "name"]
        var values: [String: Any] = [
            "repository": repository.value, "tags": rows, "hasTags": !rows.isEmpty, "count": rows.count,
            "sortLabel": "\(labels[page.order]!), \(page.descending ? "descending" : "ascending")",
            "nameActive": link(.name).active, "nameOrder": link(.name).order,
            "lastActive": link(.lastPulled).active, "lastOrder": link(.lastPulled).order,
            "countActive": link(.pullCount).active, "countOrder": link(.pullCount).order,
        ]
        if unattributed > 0 { values["unattributed"] = ["count": CompactPullCount.string(UInt64(unattributed)), "exact": unattributed] }
        return pages.render("repository", title: repository.value, values)
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
