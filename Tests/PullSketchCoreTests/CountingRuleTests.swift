import PullSketchCore
import Testing

@Suite struct CountingRuleTests {
    let repository = Fixtures.repository("team/app")
    let digest = Fixtures.digest(7)

    func event(_ method: ManifestRequestMethod, _ reference: ManifestReference, served: Digest? = nil) -> PullEvent {
        PullEvent(repository: repository, reference: reference, method: method, servedDigest: served, time: Fixtures.time(1))
    }

    func update(_ kind: KeyKind, _ reference: String, _ counter: PullCounter) -> CounterUpdate {
        CounterUpdate(kind: kind, reference: reference, counter: counter)
    }

    @Test func getByTagFetchesTheTagAndTheServedManifest() {
        let updates = CountingRule.resolutions.updates(for: event(.get, .tag(Fixtures.tag("v1")), served: digest))
        #expect(updates == [update(.tag, "v1", .fetch), update(.manifest, digest.value, .fetch)])
    }

    @Test func headByTagChecksOnlyTheTag() {
        let updates = CountingRule.resolutions.updates(for: event(.head, .tag(Fixtures.tag("v1")), served: digest))
        #expect(updates == [update(.tag, "v1", .check)])
    }

    @Test func getByDigestFetchesOnlyTheManifest() {
        let updates = CountingRule.resolutions.updates(for: event(.get, .digest(digest)))
        #expect(updates == [update(.manifest, digest.value, .fetch)])
    }

    @Test func headByDigestChecksOnlyTheManifest() {
        let updates = CountingRule.resolutions.updates(for: event(.head, .digest(digest)))
        #expect(updates == [update(.manifest, digest.value, .check)])
    }

    @Test func quayModeCountsHeadByTagForTheManifestToo() {
        let updates = CountingRule.quayAuditLog.updates(for: event(.head, .tag(Fixtures.tag("v1")), served: digest))
        #expect(updates == [update(.tag, "v1", .check), update(.manifest, digest.value, .check)])
    }

    @Test func dockerPullAndContainerdPullGiveTheSameCounts() {
        let rule = CountingRule.resolutions
        let docker = rule.updates(for: event(.get, .tag(Fixtures.tag("v1")), served: digest))
        let containerd = rule.updates(for: event(.head, .tag(Fixtures.tag("v1")), served: digest))
            + rule.updates(for: event(.get, .digest(digest)))
        func pulls(_ updates: [CounterUpdate], _ kind: KeyKind) -> UInt64 {
            let fetches = UInt64(updates.count { $0.kind == kind && $0.counter == .fetch })
            let checks = UInt64(updates.count { $0.kind == kind && $0.counter == .check })
            return rule.pullCount(kind: kind, fetches: fetches, checks: checks)
        }
        #expect(pulls(docker, .tag) == 1 && pulls(containerd, .tag) == 1)
        #expect(pulls(docker, .manifest) == 1 && pulls(containerd, .manifest) == 1)
    }

    @Test func pullCountOfAManifestIncludesChecksOnlyInQuayMode() {
        #expect(CountingRule.resolutions.pullCount(kind: .manifest, fetches: 3, checks: 2) == 3)
        #expect(CountingRule.quayAuditLog.pullCount(kind: .manifest, fetches: 3, checks: 2) == 5)
        #expect(CountingRule.resolutions.pullCount(kind: .tag, fetches: 3, checks: 2) == 5)
    }

    @Test func aDigestReferenceIsItsOwnServedDigest() {
        let other = Fixtures.digest(8)
        #expect(event(.get, .digest(digest), served: other).servedDigest == digest)
    }
}
