public import Foundation
import PullSketchEvents
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The few calls of the distribution registry API a catalog sync makes: the repository catalog and
/// each repository's tags (both paginated with `Link` headers), a tag's digest by `HEAD` and the
/// platform manifests of an image index. Paced
/// to at most `requestsPerSecond`, with basic credentials or a bearer token, answering the
/// registry's bearer challenge through its token service. Every request says it comes from a
/// catalog sync (`userAgent`), so PullSketch does not count its `HEAD`s as pulls.
public final class RegistryClient: Sendable {
    /// The user agent of every request; ingestion ignores pulls that carry it.
    public static let userAgent = NotificationEvent.catalogSyncUserAgent

    public enum Credentials: Sendable {
        case none
        case basic(username: String, password: String)
        case bearer(String)
    }

    public let base: URL
    private let credentials: Credentials
    private let pacer: Pacer
    private let session: URLSession
    /// Tokens the registry's token service gave, by scope.
    private let tokens = Mutex<[String: String]>([:])

    public init(base: URL, credentials: Credentials = .none, requestsPerSecond: Double = 20) {
        self.base = base
        self.credentials = credentials
        pacer = Pacer(interval: requestsPerSecond > 0 ? 1 / requestsPerSecond : 0)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 30
        session = URLSession(configuration: configuration, delegate: ChallengeAnswering(), delegateQueue: nil)
    }

    /// Which page of a listing to read.
    public enum PageRequest: Sendable {
        /// The first page of names after `last` (nil: from the start), `pageSize` at most.
        case after(String?, pageSize: Int)
        /// The page at an address a `Link` header or a checkpoint gave.
        case at(URL)
    }

    /// One page of a listing: its names, where it was read, and the next page's address when the
    /// registry's `Link` header names one.
    public struct Page: Sendable {
        public var names: [String]
        public var address: URL
        public var next: URL?
    }

    /// A page of the registry's repository names.
    public func repositories(_ page: PageRequest) async throws -> Page {
        let (data, address, next) = try await read(page, path: "/v2/_catalog", scope: "registry:catalog:*")
        return Page(names: try decode(CatalogPage.self, data, "/v2/_catalog").repositories ?? [], address: address, next: next)
    }

    /// A page of a repository's tag names.
    public func tags(of repository: String, _ page: PageRequest) async throws -> Page {
        let path = "/v2/\(repository)/tags/list"
        let (data, address, next) = try await read(page, path: path, scope: "repository:\(repository):pull")
        return Page(names: try decode(TagPage.self, data, path).tags ?? [], address: address, next: next)
    }

    /// Reads a page of `path`, first or linked. The next page is wherever the `Link` header points
    /// (distribution's carry `last`, Quay's catalog a token of its own, which `last` cannot stand
    /// for), always on this registry: a link naming another host (a registry behind a proxy writes
    /// its public name) is read here, by its path and query, so the credentials never leave. A link
    /// back to the page itself is an error, not a loop.
    private func read(_ page: PageRequest, path: String, scope: String) async throws -> (data: Data, address: URL, next: URL?) {
        let address: URL
        switch page {
        case .after(let last, let pageSize):
            var query = [URLQueryItem(name: "n", value: String(pageSize))]
            if let last { query.append(URLQueryItem(name: "last", value: last)) }
            address = try url(path, query: query)
        case .at(let linked):
            guard isOnThisRegistry(linked) else { throw RegistryClientError("\(linked) is not on \(base)") }
            address = linked
        }
        let (data, response) = try await send(address, method: "GET", scope: scope)
        var next = Self.nextLink(response.value(forHTTPHeaderField: "Link")).flatMap { URL(string: $0, relativeTo: address)?.absoluteURL }
        if let linked = next, !isOnThisRegistry(linked) {
            var components = URLComponents(url: base, resolvingAgainstBaseURL: false)!
            components.percentEncodedPath = linked.path(percentEncoded: true)
            components.percentEncodedQuery = linked.query(percentEncoded: true)
            next = components.url
        }
        guard next != address else { throw RegistryClientError("GET \(path): the next page's link is the page itself") }
        return (data, address, next)
    }

    private func isOnThisRegistry(_ url: URL) -> Bool {
        func origin(_ url: URL) -> (String?, String?, Int?) {
            let scheme = url.scheme?.lowercased()
            return (scheme, url.host?.lowercased(), url.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : nil))
        }
        return origin(url) == origin(base)
    }

    /// The digest and media type of the manifest `tag` points at, or nil when the tag is gone.
    public func manifest(of repository: String, tag: String) async throws -> (digest: String, mediaType: String?)? {
        let path = "/v2/\(repository)/manifests/\(tag)"
        do {
            let (_, response) = try await send(try url(path), method: "HEAD", scope: "repository:\(repository):pull", accept: Self.manifestTypes)
            guard let digest = response.value(forHTTPHeaderField: "Docker-Content-Digest") else {
                throw RegistryClientError("HEAD \(path) answered without Docker-Content-Digest")
            }
            let mediaType = response.value(forHTTPHeaderField: "Content-Type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
            return (digest, mediaType)
        } catch let error as RegistryClientError where error.status == 404 {
            return nil
        }
    }

    /// The manifests an image index lists, each with its platform (`os/architecture[/variant]`,
    /// nil when the index names none).
    public func platforms(of repository: String, index digest: String) async throws -> [(digest: String, platform: String?)] {
        let path = "/v2/\(repository)/manifests/\(digest)"
        let (data, _) = try await send(try url(path), method: "GET", scope: "repository:\(repository):pull", accept: Self.manifestTypes)
        return try decode(ImageIndex.self, data, path).manifests.map { entry in
            let platform = entry.platform.flatMap { platform in
                platform.os.flatMap { os in platform.architecture.map { ([os, $0] + [platform.variant].compactMap { $0 }).joined(separator: "/") } }
            }
            return (entry.digest, platform)
        }
    }

    static let manifestTypes = [
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws", "application/vnd.docker.distribution.manifest.v1+json",
    ].joined(separator: ", ")

    private struct ImageIndex: Decodable {
        struct Entry: Decodable {
            struct Platform: Decodable { var os: String?, architecture: String?, variant: String? }
            var digest: String
            var platform: Platform?
        }
        var manifests: [Entry]
    }
    private struct CatalogPage: Decodable { var repositories: [String]? }
    private struct TagPage: Decodable { var tags: [String]? }
    private struct TokenAnswer: Decodable {
        var token: String?
        var access_token: String?
    }

    /// `path` with `query` on the registry.
    private func url(_ path: String, query: [URLQueryItem] = []) throws -> URL {
        var components = URLComponents(url: base, resolvingAgainstBaseURL: false)!
        components.percentEncodedPath = path
        components.queryItems = query.isEmpty ? nil : query
        guard let url = components.url else { throw RegistryClientError("cannot make a URL of \(path)") }
        return url
    }

    /// Sends a request, answering one bearer challenge; a status other than 2xx throws.
    private func send(_ url: URL, method: String, scope: String, accept: String? = nil) async throws -> (Data, HTTPURLResponse) {
        let path = url.path
        var (data, response) = try await request(url, method: method, accept: accept, authorization: authorization(scope: scope))
        if response.statusCode == 401, let challenge = response.value(forHTTPHeaderField: "WWW-Authenticate"),
            let token = try await token(for: BearerChallenge(challenge), scope: scope)
        {
            (data, response) = try await request(url, method: method, accept: accept, authorization: "Bearer \(token)")
        }
        guard (200..<300).contains(response.statusCode) else {
            throw RegistryClientError("\(method) \(path) answered \(response.statusCode)", status: response.statusCode)
        }
        return (data, response)
    }

    private func request(_ url: URL, method: String, accept: String?, authorization: String?) async throws -> (Data, HTTPURLResponse) {
        await pacer.wait()
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue(Self.userAgent, forHTTPHeaderField: "User-Agent")
        if let accept { request.setValue(accept, forHTTPHeaderField: "Accept") }
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw RegistryClientError("\(url) answered without HTTP") }
        return (data, http)
    }

    /// What to send before any challenge: a token already given for the scope, else the
    /// configured credentials.
    private func authorization(scope: String) -> String? {
        if let token = tokens.withLock({ $0[scope] }) { return "Bearer \(token)" }
        switch credentials {
        case .none: return nil
        case .basic(let username, let password): return "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        case .bearer(let token): return "Bearer \(token)"
        }
    }

    /// Asks the challenge's token service for a token of `scope`, with the basic credentials if any.
    private func token(for challenge: BearerChallenge?, scope: String) async throws -> String? {
        guard let challenge, var components = URLComponents(string: challenge.realm) else { return nil }
        components.queryItems = (components.queryItems ?? []) + [challenge.service.map { URLQueryItem(name: "service", value: $0) },
            URLQueryItem(name: "scope", value: challenge.scope ?? scope)].compactMap { $0 }
        guard let url = components.url else { return nil }
        var basic: String?
        if case .basic(let username, let password) = credentials {
            basic = "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        }
        let (data, response) = try await request(url, method: "GET", accept: "application/json", authorization: basic)
        guard response.statusCode == 200 else { throw RegistryClientError("token service \(challenge.realm) answered \(response.statusCode)", status: response.statusCode) }
        let answer = try decode(TokenAnswer.self, data, challenge.realm)
        guard let token = answer.token ?? answer.access_token else { throw RegistryClientError("token service \(challenge.realm) gave no token") }
        tokens.withLock { $0[scope] = token }
        return token
    }

    private func decode<Value: Decodable>(_ type: Value.Type, _ data: Data, _ what: String) throws -> Value {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw RegistryClientError("\(what) answered JSON that is not a \(type): \(error)")
        }
    }

    /// The target of a `Link` header's `rel="next"` entry (`<target>; rel="next"`), as written.
    static func nextLink(_ header: String?) -> String? {
        guard let header else { return nil }
        // Entries are separated by commas outside the angle brackets around each target.
        var rest = Substring(header)
        while let open = rest.firstIndex(of: "<"), let close = rest[open...].firstIndex(of: ">") {
            let target = rest[rest.index(after: open)..<close]
            let parameters = rest[rest.index(after: close)...].prefix { $0 != "<" }
            let isNext = parameters.split(whereSeparator: { $0 == ";" || $0 == "," }).contains { parameter in
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                return pair.count == 2 && pair[0] == "rel" && pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")).split(separator: " ").contains("next")
            }
            if isNext { return String(target) }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }
}

/// Lets a 401 through to the client, which answers bearer challenges itself: without a delegate
/// that says so, Foundation on Linux waits for an answer to the challenge forever.
private final class ChallengeAnswering: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        completionHandler(.rejectProtectionSpace, nil)
    }
}

/// A `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge.
struct BearerChallenge {
    var realm: String
    var service: String?
    var scope: String?

    init?(_ header: String) {
        guard header.lowercased().hasPrefix("bearer ") else { return nil }
        var values: [String: String] = [:]
        // Parameters are key="value" pairs; values are quoted and may hold commas.
        var rest = Substring(header.dropFirst("bearer ".count))
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " ,")).lowercased()
            rest = rest[rest.index(after: equals)...]
            let value: Substring
            if rest.first == "\"", let close = rest.dropFirst().firstIndex(of: "\"") {
                value = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end]
                rest = rest[end...]
            }
            values[key] = String(value)
        }
        guard let realm = values["realm"] else { return nil }
        self.realm = realm
        service = values["service"]
        scope = values["scope"]
    }
}

public struct RegistryClientError: Error, CustomStringConvertible {
    public let description: String
    /// The HTTP status that caused it, if any.
    public let status: Int?

    init(_ description: String, status: Int? = nil) {
        self.description = description
        self.status = status
    }
}

/// Spaces requests at least `interval` seconds apart, across tasks.
actor Pacer {
    private let interval: Double
    private var next = ContinuousClock.now

    init(interval: Double) {
        self.interval = interval
    }

    func wait() async {
        let now = ContinuousClock.now
        let start = max(now, next)
        next = start + .milliseconds(Int64(interval * 1_000))
        if start > now { try? await Task.sleep(until: start, clock: .continuous) }
    }
}
