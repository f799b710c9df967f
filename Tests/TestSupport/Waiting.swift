import Testing

/// Polls `condition` every 50 ms until it holds, for up to `timeout` of polling. A poll that
/// resumes late is charged at most twice its interval: the whole suite on two cores can keep a
/// task from running for a minute, and the task that would make the condition true may be queued
/// behind this one, so time spent not running must not use up the bound. The bound only ends a
/// failing test.
public func waitFor(_ what: String = "condition", within timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
    let interval = Duration.milliseconds(50)
    var polled = Duration.zero
    while try await !condition() {
        try #require(polled < timeout, "\(what): not within \(timeout)")
        let asleep = ContinuousClock.now
        try await Task.sleep(for: interval)
        polled += min(ContinuousClock.now - asleep, interval * 2)
    }
}
