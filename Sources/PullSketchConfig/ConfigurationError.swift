/// A configuration value PullSketch cannot use, named by its key so the operator can fix it.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public let key: String
    public let reason: String

    init(_ key: String, _ reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { "configuration \(key): \(reason)" }
}
