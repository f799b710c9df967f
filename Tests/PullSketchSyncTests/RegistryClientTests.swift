import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
@testable import PullSketchSync
import Testing

/// The registry client's bearer token flow, against a stand-in registry and token service: a real
/// token service needs signing keys and a server this machine does not have, so this small fake
/// answers the way distribution's token authentication does (a 401 with a `Bearer` challenge, a
/// token for basic credentials at the realm).
@Suite struct RegistryClientTests {
    static let token = "t0k3n-for-sync"

    static func registry() -> Application<RouterResponder<BasicRequestContext>> {
        let router = Router()
        let authorized: @Sendable (Request) -> Bool = { $0.headers[.authorization] == "Bearer \(token)" }
        router.get("/token") { request, _ -> Response in
            let basic = "Basic " + Data("sync:secret".utf8).base64EncodedString()
            guard request.headers[.authorization] == basic, request.uri.queryParameters["scope"] == "registry:catalog:*" else {
                return Response(status: .unauthorized)
            }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"token": "\#(token)"}"#)))
        }
        router.get("/v2/_catalog") { request, context -> Response in
            guard authorized(request) else {
                let realm = "http://127.0.0.1:\(request.head.authority?.split(separator: ":").last ?? "0")/token"
                return Response(status: .unauthorized, headers: [.wwwAuthenticate: #"Bearer realm="\#(realm)",service="fake",scope="registry:catalog:*""#])
            }
            let page = request.uri.queryParameters["last"] == nil ? #"{"repositories": ["a/one", "b/two"]}"# : #"{"repositories": ["c/three"]}"#
            var headers: HTTPFields = [:]
            if request.uri.queryParameters["last"] == nil { headers[HTTPField.Name("Link")!] = #"</v2/_catalog?last=b%2Ftwo&n=2>; rel="next""# }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        return Application(router: router)
    }

    @Test func aBearerChallengeIsAnsweredWithATokenForTheBasicCredentialsAndPagesFollowLinks() async throws {
        try await Self.registry().test(.live) { client in
            let base = URL(string: "http://127.0.0.1:\(client.port!)")!
            let signedIn = RegistryClient(base: base, credentials: .basic(username: "sync", password: "secret"), requestsPerSecond: 1_000)
            let first = try await signedIn.repositories(.after(nil, pageSize: 2))
            #expect(first.names == ["a/one", "b/two"])
            let next = try #require(first.next, "the Link header names the next page")
            #expect(next.absoluteString == "http://127.0.0.1:\(client.port!)/v2/_catalog?last=b%2Ftwo&n=2", "resolved against the page")
            let second = try await signedIn.repositories(.at(next))
            #expect(second.names == ["c/three"] && second.next == nil)
            #expect(try await signedIn.repositories(.after("b/two", pageSize: 2)).names == ["c/three"])

            let wrong = RegistryClient(base: base, credentials: .basic(username: "sync", password: "wrong"), requestsPerSecond: 1_000)
            await #expect(throws: RegistryClientError.self) { try await wrong.repositories(.after(nil, pageSize: 2)) }
        }
    }

    @Test func requestsAreSpacedByTheRate() async throws {
        try await Self.registry().test(.live) { client in
            let base = URL(string: "http://127.0.0.1:\(client.port!)")!
            let paced = RegistryClient(base: base, credentials: .bearer(Self.token), requestsPerSecond: 10)
            let started = ContinuousClock.now
            for _ in 0..<5 { _ = try await paced.repositories(.after(nil, pageSize: 2)) }
            #expect(ContinuousClock.now - started >= .milliseconds(400), "five requests at 10/s need 0.4 s at least")
        }
    }

    @Test(arguments: [
        (#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
         "https://auth.example/token", "registry.example", "repository:a/b:pull,push"),
        (#"bearer realm="http://x/t""#, "http://x/t", nil, nil),
    ] as [(String, String, String?, String?)])
    func bearerChallengesAreParsed(header: String, realm: String, service: String?, scope: String?) throws {
        let challenge = try #require(BearerChallenge(header))
        #expect(challenge.realm == realm && challenge.service == service && challenge.scope == scope)
    }

    @Test(arguments: [
        (#"</v2/_catalog?last=b&n=2>; rel="next""#, "/v2/_catalog?last=b&n=2"),
        (#"<https://r.example/v2/_catalog?n=100&next_page=gAAAA-x_y%3D>; rel="next""#, "https://r.example/v2/_catalog?n=100&next_page=gAAAA-x_y%3D"),
        (#"</p?a=1>; rel="prev", </n?a=2>; REL=next"#, "/n?a=2"),
        (#"</x?q=a,b>; title="a, b"; rel="next""#, "/x?q=a,b"),
        (#"</p>; rel="prev""#, nil),
        ("", nil),
    ] as [(String, String?)])
    func theNextPageIsTheLinkHeadersRelNextTarget(header: String, target: String?) throws {
        #expect(RegistryClient.nextLink(header) == target)
    }

    @Test func aBasicChallengeIsNoBearerChallenge() {
        #expect(BearerChallenge(#"Basic realm="registry""#) == nil)
    }
}
