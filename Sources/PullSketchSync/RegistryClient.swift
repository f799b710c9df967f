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

    /// One page of repository names after `last` (nil: from the start), and whether more follow.
    public func repositories(after last: String?, pageSize: Int) async throws -> (names: [String], more: Bool) {
        var query = [URLQueryItem(name: "n", value: String(pageSize))]
        if let last { query.append(URLQueryItem(name: "last", value: last)) }
        let (data, response) = try await send(path: "/v2/_catalog", query: query, method: "GET", scope: "registry:catalog:*")
        let page = try decode(CatalogPage.self, data, "/v2/_catalog")
        return (page.repositories ?? [], Self.hasNextLink(response))
    }

    /// One page of a repository's tags after `last`, and whether more follow.
    public func tags(of repository: String, after last: String?, pageSize: Int) async throws -> (names: [String], more: Bool) {
        var query = [URLQueryItem(name: "n", value: String(pageSize))]
        if let last { query.append(URLQueryItem(name: "last", value: last)) }
        let path = "/v2/\(repository)/tags/list"
        let (data, response) = try await send(path: path, query: query, method: "GET", scope: "repository:\(repository):pull")
        return (try decode(TagPage.self, data, path).tags ?? [], Self.hasNextLink(response))
    }

    /// The digest and media type of the manifest `tag` points at, or nil when the tag is gone.
    public func manifest(of repository: String, tag: String) async throws -> (digest: String, mediaType: String?)? {
        let path = "/v2/\(repository)/manifests/\(tag)"
        do {
            let (_, response) = try await send(path: path, query: [], method: "HEAD", scope: "repository:\(repository):pull", accept: Self.manifestTypes)
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
        let (data, _) = try await send(path: path, query: [], method: "GET", scope: "repository:\(repository):pull", accept: Self.manifestTypes)
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

    /// Sends a request, answering one bearer challenge; a status other than 2xx throws.
    private func send(path: String, query: [URLQueryItem], method: String, scope: String, accept: String? = nil) async throws -> (Data, HTTPURLResponse) {
        var components = URLComponents(url: base, resolvingAgainstBaseURL: false)!
        components.percentEncodedPath = path
        components.queryItems = query.isEmpty ? nil : query
        guard let url = components.url else { throw RegistryClientError("cannot make a URL of \(path)") }
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

    /// Whether a `Link` header names a next page (`<…>; rel="next"`).
    static func hasNextLink(_ response: HTTPURLResponse) -> Bool {
        guard let link = response.value(forHTTPHeaderField: "Link") else { return false }
        return link.split(separator: ",").contains { part in
            part.split(separator: ";").dropFirst().contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "rel=\"next\"" }
        }
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
