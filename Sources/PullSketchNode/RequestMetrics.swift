import Dispatch
import HTTPTypes
import Hummingbird
import Metrics
import Synchronization

/// Requests per route, method and status, their durations, errors thrown, and requests in flight
/// per method, under the series names Hummingbird's `MetricsMiddleware` uses (`hb_requests`,
/// `http_server_request_duration`, `hb_request_errors`, `http_server_active_requests`).
///
/// Recorded when the handler returns its response, not after the body is written: Hummingbird's
/// middleware wraps every body in a closure to learn that, and a closure body is written as three
/// writes to the channel (head, body, end) where a buffer is one. That cost about a fifth of
/// the requests per second the node's HTTP side serves. A duration here is up to the response
/// head; a streamed body's transfer (CSV exports) is not in it.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let series: RequestSeries

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        let inFlight = series.inFlight(request.method)
        inFlight.increment()
        defer { inFlight.decrement() }
        do {
            let response = try await next(request, context)
            let route = series.route(context.endpointPath ?? "Unknown", request.method, response.status)
            route.requests.increment()
            route.duration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            let route = series.route(context.endpointPath ?? "NotFound", request.method, status)
            route.requests.increment()
            route.errors.increment()
            throw error
        }
    }
}

/// The series, made once per label set: making one goes through the metrics backend's registry.
/// One per node, for the router's middleware and `EventLoopIngestion` alike.
final class RequestSeries: Sendable {
    struct Route: Sendable {
        let requests: Counter
        let duration: Timer
        let errors: Counter
    }

    private struct RouteKey: Hashable {
        let path: String
        let method: HTTPRequest.Method
        let status: HTTPResponse.Status
    }

    private let factory: any MetricsFactory
    private let routes = Mutex<[RouteKey: Route]>([:])
    private let methods = Mutex<[HTTPRequest.Method: Meter]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func route(_ path: String, _ method: HTTPRequest.Method, _ status: HTTPResponse.Status) -> Route {
        routes.withLock { routes in
            let key = RouteKey(path: path, method: method, status: status)
            if let route = routes[key] { return route }
            let labels = [("http.route", path), ("http.request.method", method.rawValue)]
            let code = String(status.code)
            let byStatus = labels + [("http.response.status_code", code)]
            let route = Route(
                requests: Counter(label: "hb.requests", dimensions: byStatus, factory: factory),
                duration: Timer(label: "http.server.request.duration", dimensions: byStatus, preferredDisplayUnit: .seconds, factory: factory),
                errors: Counter(label: "hb.request.errors", dimensions: labels + [("error.type", code)], factory: factory)
            )
            routes[key] = route
            return route
        }
    }

    func inFlight(_ method: HTTPRequest.Method) -> Meter {
        methods.withLock { methods in
            if let meter = methods[method] { return meter }
            let meter = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", method.rawValue)], factory: factory)
            methods[method] = meter
            return meter
        }
    }
}
