import HTTPTypes
import Hummingbird

extension Router<NodeRequestContext> {
    /// The methods a client may send to a path that another method serves, answered 405.
    private static let otherMethods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options]

    /// `handler` for `method` on `path`, and for every other common method a 405 whose `Allow`
    /// names it: a client that reaches a route with the wrong method (a `curl` of the webhook's
    /// URL, a `GET` of `/login`) learns that the path is right. `HEAD` of a `GET` route is GET's
    /// (`autoGenerateHeadEndpoints`).
    @discardableResult
    func route(
        _ method: HTTPRequest.Method,
        _ path: RouterPath,
        use handler: @Sendable @escaping (Request, NodeRequestContext) async throws -> some ResponseGenerator
    ) -> Self {
        on(path, method: method, use: handler)
        let allowed: [HTTPRequest.Method] = method == .get ? [.get, .head] : [method]
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        for other in Self.otherMethods where !allowed.contains(other) {
            on(path, method: other) { _, _ in
                var response = JSONResponse.error(.methodNotAllowed, "\(other.rawValue) is not served here: use \(allow)")
                response.headers[.allow] = allow
                return response
            }
        }
        return self
    }
}
