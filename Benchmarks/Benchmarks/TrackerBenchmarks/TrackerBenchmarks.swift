import Benchmark
import Foundation
import PullSketchCore
import PullSketchEvents
import PullSketchRedis
import BenchmarkSupport

/// Zipf over 10,000 tags in 100 repositories: every key fits the hot table, the steady state.
let getByTag = Workload(tags: 10_000, repositories: 100, length: 1 << 16, method: .get, seed: 1)
let headByTag = Workload(tags: 10_000, repositories: 100, length: 1 << 16, method: .head, seed: 2)
let mask = (1 << 16) - 1

func warmTracker(_ workload: Workload, coreWindows: Int = 1) -> PullTracker {
    let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, coreWindowCount: coreWindows))
    if coreWindows == 1 {
        for event in workload.events { tracker.record(event) }
    } else {
        onTwoThreads { _ in for event in workload.events { tracker.record(event) } }
    }
    return tracker
}

/// Runs `body` on two OS threads at once and waits for both.
func onTwoThreads(_ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchSemaphore(value: 0)
    for index in 0..<2 {
        Thread {
            body(index)
            done.signal()
        }.start()
    }
    done.wait()
    done.wait()
}

/// Each of two threads records `count` events of `getByTag` into `tracker`, from its own start.
func recordOnTwoThreads(_ tracker: PullTracker, count: Int) {
    onTwoThreads { thread in
        for index in 0..<count { tracker.record(getByTag.events[(index &+ thread &* 7_919) & mask]) }
    }
}

/// A pull notification as docker-registry sends it (1.5 KB, references included), from the tests' corpus.
let pullEnvelope = try! Data(
    contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../Tests/Corpus/notifications/envelope-010.json")
)

let redisEndpoint = ProcessInfo.processInfo.environment["PULLSKETCH_BENCH_REDIS_PORT"]
    .flatMap(Int.init)
    .map { RedisEndpoint(port: $0) }

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    Benchmark("record GET by tag (tag + manifest), 1 thread", configuration: .init(scalingFactor: .mega)) { benchmark in
        let tracker = warmTracker(getByTag)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { tracker.record(getByTag.events[index & mask]) }
    }

    Benchmark("record HEAD by tag (tag pulled, manifest used), 1 thread", configuration: .init(scalingFactor: .mega)) { benchmark in
        let tracker = warmTracker(headByTag)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { tracker.record(headByTag.events[index & mask]) }
    }

    Benchmark("record GET by tag, 2 threads (time per event per thread)", configuration: .init(scalingFactor: .mega)) { benchmark in
        let tracker = warmTracker(getByTag)
        let count = benchmark.scaledIterations.count
        benchmark.startMeasurement()
        recordOnTwoThreads(tracker, count: count)
    }

    Benchmark("record GET by tag, 1 thread, 2 core windows", configuration: .init(scalingFactor: .mega)) { benchmark in
        let tracker = warmTracker(getByTag, coreWindows: 2)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { tracker.record(getByTag.events[index & mask]) }
    }

    Benchmark("record GET by tag, 2 threads, 2 core windows (time per event per thread)", configuration: .init(scalingFactor: .mega)) {
        benchmark in
        let tracker = warmTracker(getByTag, coreWindows: 2)
        let count = benchmark.scaledIterations.count
        benchmark.startMeasurement()
        recordOnTwoThreads(tracker, count: count)
    }

    Benchmark("floor: 2 lock round trips + 2 record updates in a window-sized table, 1 thread", configuration: .init(scalingFactor: .mega)) {
        benchmark in
        let floor = HotPathFloor(getByTag)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { floor.record(index) }
    }

    Benchmark(
        "floor with names: 2 lock round trips + 2 record updates, each key's names compared with its record's, 1 thread",
        configuration: .init(scalingFactor: .mega)
    ) { benchmark in
        let floor = NamedHotPathFloor(getByTag)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { floor.record(index) }
    }

    Benchmark("floor: the same, 2 threads (time per event per thread)", configuration: .init(scalingFactor: .mega)) { benchmark in
        let floor = HotPathFloor(getByTag)
        let count = benchmark.scaledIterations.count
        benchmark.startMeasurement()
        onTwoThreads { thread in
            for index in 0..<count { floor.record(index &+ thread &* 7_919) }
        }
    }

    Benchmark("floor: the same, 2 threads with a table each, nothing shared (time per event per thread)", configuration: .init(scalingFactor: .mega)) {
        benchmark in
        let floors = [HotPathFloor(getByTag), HotPathFloor(getByTag)]
        let count = benchmark.scaledIterations.count
        benchmark.startMeasurement()
        onTwoThreads { thread in
            for index in 0..<count { floors[thread].record(index &+ thread &* 7_919) }
        }
    }

    Benchmark("baseline: Dictionary of PullKey behind 8 mutexes, GET by tag, 1 thread", configuration: .init(scalingFactor: .mega)) {
        benchmark in
        let map = LockedDictionaryBaseline()
        for event in getByTag.events { map.record(event) }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { map.record(getByTag.events[index & mask]) }
    }

    Benchmark("validate names + record GET by tag, 1 thread", configuration: .init(scalingFactor: .mega)) { benchmark in
        let tracker = warmTracker(getByTag)
        let raw = getByTag.events.prefix(1_000).map { ($0.repository.value, $0.reference, $0.servedDigest!.value) }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            let (repository, reference, digest) = raw[index % raw.count]
            guard case .tag(let tag) = reference else { continue }
            let event = PullEvent(
                repository: try! RepositoryName(repository),
                reference: .tag(try! TagName(tag.value)),
                method: .get,
                servedDigest: try! Digest(digest),
                time: Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
            )
            tracker.record(event)
        }
    }

    Benchmark("drain a window of 20,000 hot keys", configuration: .init(maxIterations: 200)) { benchmark in
        let tracker = warmTracker(getByTag)
        benchmark.startMeasurement()
        blackHole(tracker.drain())
        benchmark.stopMeasurement()
    }

    Benchmark("drain a window of 20,000 hot keys recorded on 2 threads, 2 core windows", configuration: .init(maxIterations: 200)) {
        benchmark in
        let tracker = warmTracker(getByTag, coreWindows: 2)
        benchmark.startMeasurement()
        blackHole(tracker.drain())
        benchmark.stopMeasurement()
    }

    Benchmark("sketch merge 16,384 x 5", configuration: .init(maxIterations: 2_000)) { benchmark in
        var target = CountMinSketch(parameters: SketchParameters())
        var source = CountMinSketch(parameters: SketchParameters())
        for event in getByTag.events.prefix(10_000) {
            source.add(KeyHash(kind: .tag, repository: event.repository.value, reference: "x", seed: 1))
        }
        benchmark.startMeasurement()
        try! target.merge(source)
        benchmark.stopMeasurement()
        blackHole(target)
    }

    Benchmark("read a pull notification: byte reader (the node's)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(pullEnvelope.withUnsafeBytes { NotificationEnvelope(json: $0) })
        }
    }

    Benchmark("baseline: read a pull notification with JSONDecoder", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? JSONDecoder().decode(NotificationEnvelope.self, from: pullEnvelope))
        }
    }

    Benchmark(
        "baseline: Redis EVAL per pull (Quay upstream), warm hiredis connection",
        configuration: .init(scalingFactor: .kilo, skip: redisEndpoint == nil)
    ) { benchmark in
        let connection = try! RedisConnection(redisEndpoint!)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            try! QuayPerPullBaseline.record(getByTag.events[index & mask], on: connection)
        }
    }
}
