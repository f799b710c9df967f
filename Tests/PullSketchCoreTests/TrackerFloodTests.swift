import PullSketchCore
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.cpuBound) struct TrackerFloodTests {
    @Test func tenMillionDistinctKeysStayWithinTheMemoryBoundAndEveryPullIsAccountedFor() {
        let distinctKeys = 10_000_000
        let recorders = 2
        let configuration = Fixtures.enabled()
        let repositories = (0..<100).map { Fixtures.repository("flood/repo\($0)") }
        let tracker = PullTracker(configuration: configuration)
        let footprintWhenFull = Mutex(0)
        runOnThreads(recorders) { recorder in
            for index in stride(from: recorder, to: distinctKeys, by: recorders) {
                if recorder == 0, index == 1_000_000 {
                    footprintWhenFull.withLock { $0 = tracker.memoryFootprint() }
                }
                let event = PullEvent(
                    repository: repositories[index % repositories.count],
                    reference: .tag(Fixtures.tag("t\(index)")),
                    method: .head,
                    time: Fixtures.time(Int64(index))
                )
                tracker.record(event)
            }
        }
        let footprint = tracker.memoryFootprint()
        let window = tracker.drain()
        print("flood: \(distinctKeys) distinct keys, tracker footprint \(footprint) bytes, bound \(configuration.windowByteBound) bytes")
        #expect(footprint <= configuration.windowByteBound)
        #expect(footprint == footprintWhenFull.withLock { $0 }, "memory grew after the hot table filled")
        #expect(window.hotEntries.count <= configuration.hotCapacity)
        #expect(window.hotEntries.count >= configuration.hotCapacity * 9 / 10)
        #expect(window.pulls == UInt64(distinctKeys))
        #expect(window.tailMass == UInt64(distinctKeys - window.hotEntries.count))
        #expect(window.tailRepositoryPulls.count == repositories.count)
        #expect(window.tailRepositoryPulls.values.reduce(0, +) == window.tailMass)
    }
}
