import HTTPTypes
public import Hummingbird
import NIOHTTP1
public import NIOCore
import PullSketchStore
import Synchronization

/// The node's request context: Hummingbird's, plus the peer's address for the sign-in limit.
public struct NodeRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The requests a node is answering, held to `max_concurrent_requests`: one count for the router
/// and for `EventLoopIngestion`, which answers ingestion requests without it.
final class RequestsInFlight: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts a request in; false, counting nothing, when `limit` are in flight already.
    func enter() -> Bool {
        guard count.add(1, ordering: .relaxed).newValue <= limit else {
            count.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func leave() {
        count.subtract(1, ordering: .relaxed)
    }

    /// Why a request beyond the limit is refused.
    var refusal: String { "more than \(limit) requests in flight" }
}

/// At most `RequestsInFlight.limit` requests in flight; beyond it a 503 with `Retry-After` at once,
/// so a flood of slow requests cannot queue without bound.
struct ConcurrencyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let inFlight: RequestsInFlight

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard inFlight.enter() else { return unavailable(inFlight.refusal) }
        defer { inFlight.leave() }
        return try await next(request, context)
    }
}

/// A handler's error that says no HTTP status (a failed statement, a schema the build does not
/// know) is a 500 with a JSON error, and is logged with its cause: Hummingbird would answer an
/// empty 500 and log it only at debug level. The error text stays in the log, not in the answer.
struct UnexpectedErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch where error is any HTTPResponseError || error is CancellationError {
            throw error
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return JSONResponse.error(.internalServerError, "internal error; the node's log says what failed")
        }
    }
}

/// A database that is busy, slow or down is a 503 with `Retry-After`, never a 500 or a stall.
struct DatabaseUnavailableMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            guard let reason = DatabaseUnavailable(error) else { throw error }
            context.logger.warning("database unavailable for a request", metadata: ["reason": "\(reason)", "path": "\(request.uri.path)"])
            return unavailable(reason.description)
        }
    }
}

private func unavailable(_ message: String) -> Response {
    var response = JSONResponse.error(.serviceUnavailable, message)
    response.headers[.retryAfter] = "1"
    return response
}

/// Headers every response gets; HTML also gets a Content-Security-Policy that allows nothing but
/// the page's own inline style and forms posting back to the node.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var contentSecurityPolicy: String {
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for field in HTTPFields.securityHeaders { response.headers[field.name] = field.value }
        if response.headers.first(where: { $0.name == .contentType })?.value.hasPrefix("text/html") == true {
            response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        }
        return response
    }
}

extension HTTPFields {
    /// What every response carries (`SecurityHeadersMiddleware`, `EventLoopIngestion`, `HTTP1Requests`).
    static let securityHeaders: HTTPFields = [.xContentTypeOptions: "nosniff", .frameOptions: "DENY", .referrerPolicy: "no-referrer"]
}

extension HTTPHeaders {
    /// `HTTPFields.securityHeaders` for the answers written in front of the conversion to HTTP types.
    static let securityHeaders = HTTPHeaders(HTTPFields.securityHeaders.map { ($0.name.canonicalName, $0.value) })
}

extension HTTPField.Name {
    /// Built once: a name is parsed and lowercased when it is made, and these go on every response.
    static let frameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}

/// Failed sign-ins per client address: at most `attempts` in `window`; then the address is refused
/// until the oldest failure leaves the window. Remembers at most `addresses` addresses (the least
/// recently failing are forgotten first), so a spray of addresses costs bounded memory.
final class SignInLimiter: Sendable {
    private let attempts: Int
    private let window: Duration
    private let addresses: Int
    private let failures = Mutex<[String: [ContinuousClock.Instant]]>([:])

    init(attempts: Int = 10, window: Duration = .seconds(60), addresses: Int = 10_000) {
        self.attempts = attempts
        self.window = window
        self.addresses = addresses
    }

    /// How long `address` must wait before it may try again; nil when it may try now.
    func wait(for address: String, now: ContinuousClock.Instant = .now) -> Duration? {
        failures.withLock { failures in
            let recent = (failures[address] ?? []).filter { now - $0 < window }
            failures[address] = recent.isEmpty ? nil : recent
            guard recent.count >= attempts, let oldest = recent.first else { return nil }
            return window - (now - oldest)
        }
    }

    /// Counts a failed sign-in from `address`.
    func recordFailure(from address: String, now: ContinuousClock.Instant = .now) {
        failures.withLock { failures in
            if failures[address] == nil, failures.count >= addresses,
                let stalest = failures.min(by: { ($0.value.last ?? now) < ($1.value.last ?? now) })?.key
            {
                failures[stalest] = nil
            }
            failures[address, default: []].append(now)
            if failures[address]!.count > attempts { failures[address]!.removeFirst() }
        }
    }
}
