import Foundation
import PullSketchCore
import Testing

/// Resident memory of this process, from /proc/self/statm.
func residentBytes() -> Int {
    let fields = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ") ?? []
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

@Suite struct TrackerFloodTests {
    @Test func tenMillionDistinctKeysStayWithinTheMemoryBoundAndEveryPullIsAccountedFor() {
        let distinctKeys = 10_000_000
        let recorders = 2
        let configuration = Fixtures.enabled()
        let repositories = (0..<100).map { Fixtures.repository("flood/repo\($0)") }
        let before = residentBytes()
        let tracker = PullTracker(configuration: configuration)
        runOnThreads(recorders) { recorder in
            for index in stride(from: recorder, to: distinctKeys, by: recorders) {
                let event = PullEvent(
                    repository: repositories[index % repositories.count],
                    reference: .tag(Fixtures.tag("t\(index)")),
                    method: .head,
                    time: Fixtures.time(Int64(index))
                )
                tracker.record(event)
            }
        }
        let grown = residentBytes() - before
        let window = tracker.drain()
        print("flood: \(distinctKeys) distinct keys, resident growth \(grown) bytes, bound \(configuration.windowByteBound) bytes")
        #expect(grown <= configuration.windowByteBound)
        #expect(window.hotEntries.count <= configuration.hotCapacity)
        #expect(window.hotEntries.count >= configuration.hotCapacity * 9 / 10)
        #expect(window.counterUpdates == UInt64(distinctKeys))
        #expect(window.tailMass == UInt64(distinctKeys - window.hotEntries.count))
        #expect(window.tailRepositories.count == repositories.count)
        #expect(window.tailRepositories.reduce(0) { $0 + $1.pulls } == window.tailMass)
    }
}
