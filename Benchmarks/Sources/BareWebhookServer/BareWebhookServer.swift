import Hummingbird

/// The HTTP stack alone, as the limit the webhook node is measured against: Hummingbird with the
/// node's HTTP/1 server, answering `POST /notifications` 200 with a summary-sized JSON body after
/// reading the request body, and doing nothing else (no secret, no parsing, no Redis, no tracker).
/// Usage: BareWebhookServer PORT
@main
struct BareWebhookServer {
    static func main() async throws {
        guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
            print("usage: BareWebhookServer PORT")
            return
        }
        let router = Router()
        router.post("notifications") { request, _ -> Response in
            _ = try await request.body.collect(upTo: 1 << 20)
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"accepted":1,"duplicates":0,"ignored":0,"dropped":0}"#))
            )
        }
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await application.runService()
    }
}
