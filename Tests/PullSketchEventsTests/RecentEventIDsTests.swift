import PullSketchEvents
import Testing

@Suite struct RecentEventIDsTests {
    @Test func aRedeliveredIdIsRefusedAndTheOldestIsForgottenFirst() {
        let ids = RecentEventIDs(capacity: 2)
        #expect(ids.insert("a") && ids.insert("b"))
        #expect(!ids.insert("a"))
        #expect(ids.insert("c"))  // forgets "a"
        #expect(ids.insert("a") && !ids.insert("c"))
    }

    /// Ids are kept as 128-bit hashes (300 ids of 480 KB once held 141 MB): long ids that differ
    /// only at their end are still told apart.
    @Test func longIdsDifferingOnlyAtTheirEndAreToldApart() {
        let ids = RecentEventIDs(capacity: 1_000)
        let prefix = String(repeating: "x", count: 480_000)
        for index in 0..<300 {
            #expect(ids.insert(prefix + String(index)))
        }
        for index in 0..<300 {
            #expect(!ids.insert(prefix + String(index)))
        }
    }
}
