@testable import PullSketchNode
import Testing

@Suite struct ReaderTokenTests {
    @Test func readerPatternsMatchWholeNames() {
        let token = ReaderToken(token: "t", repositories: ["team/*", "ci/app"])
        #expect(token.mayRead("team/app") && token.mayRead("team/sub/app") && token.mayRead("ci/app"))
        #expect(!token.mayRead("teams/app") && !token.mayRead("ci/app2") && !token.mayRead("other/team/app"))
    }
}
