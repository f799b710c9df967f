import PullSketchCore
import Testing

@Suite struct CountingRuleTests {
    let repository = Fixtures.repository("team/app")
    let digest = Fixtures.digest(7)

    func event(_ method: ManifestRequestMethod, _ reference: ManifestReference, served: Digest? = nil) -> PullEvent {
        PullEvent(repository: repository, reference: reference, method: method, servedDigest: served, time: Fixtures.time(1))
    }

    func touch(_ kind: KeyKind, _ reference: String, fetches: UInt64 = 0, checks: UInt64 = 0, pulls: UInt64 = 0) -> KeyTouch {
        KeyTouch(key: try! PullKey(kind: kind, repository: repository.value, reference: reference), effect: KeyEffect(fetches: fetches, checks: checks, pulls: pulls))
    }

    @Test(arguments: CountingRule.allCases)
    func getByTagFetchesAndPullsTheTagAndTheServedManifest(rule: CountingRule) {
        let touches = rule.touches(for: event(.get, .tag(Fixtures.tag("v1")), served: digest))
        #expect(touches == [touch(.tag, "v1", fetches: 1, pulls: 1), touch(.manifest, digest.value, fetches: 1, pulls: 1)])
    }

    @Test func headByTagPullsTheTagAndOnlyMarksTheServedManifestUsed() {
        let touches = CountingRule.resolutions.touches(for: event(.head, .tag(Fixtures.tag("v1")), served: digest))
        #expect(touches == [touch(.tag, "v1", checks: 1, pulls: 1), touch(.manifest, digest.value)])
    }

    @Test(arguments: CountingRule.allCases)
    func getByDigestFetchesAndPullsOnlyTheManifest(rule: CountingRule) {
        #expect(rule.touches(for: event(.get, .digest(digest))) == [touch(.manifest, digest.value, fetches: 1, pulls: 1)])
    }

    @Test func headByDigestChecksTheManifestWithoutAPull() {
        #expect(CountingRule.resolutions.touches(for: event(.head, .digest(digest))) == [touch(.manifest, digest.value, checks: 1)])
    }

    @Test func quayModeCountsEveryHeadAsAPull() {
        let byTag = CountingRule.quayAuditLog.touches(for: event(.head, .tag(Fixtures.tag("v1")), served: digest))
        #expect(byTag == [touch(.tag, "v1", checks: 1, pulls: 1), touch(.manifest, digest.value, checks: 1, pulls: 1)])
        let byDigest = CountingRule.quayAuditLog.touches(for: event(.head, .digest(digest)))
        #expect(byDigest == [touch(.manifest, digest.value, checks: 1, pulls: 1)])
    }

    @Test func dockerPullAndContainerdPullGiveTheSamePulls() {
        let rule = CountingRule.resolutions
        let docker = rule.touches(for: event(.get, .tag(Fixtures.tag("v1")), served: digest))
        let containerd = rule.touches(for: event(.head, .tag(Fixtures.tag("v1")), served: digest))
            + rule.touches(for: event(.get, .digest(digest)))
        func pulls(_ touches: [KeyTouch], _ kind: KeyKind) -> UInt64 {
            touches.filter { $0.key.kind == kind }.reduce(0) { $0 + $1.effect.pulls }
        }
        #expect(pulls(docker, .tag) == 1 && pulls(containerd, .tag) == 1)
        #expect(pulls(docker, .manifest) == 1 && pulls(containerd, .manifest) == 1)
    }

    @Test func aDigestReferenceIsItsOwnServedDigest() {
        let other = Fixtures.digest(8)
        #expect(event(.get, .digest(digest), served: other).servedDigest == digest)
    }
}
