import Testing

/// Polls `condition` for up to `timeout`: the bound only ends a failing test; the whole suite on
/// two cores can keep a background task from running for more than 10 s.
public func waitFor(_ what: String = "condition", within timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        try #require(ContinuousClock.now < deadline, "\(what): not within \(timeout)")
        try await Task.sleep(for: .milliseconds(50))
    }
}
