/// Why a repository name, tag or digest was refused. Invalid input is never counted.
public struct ValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Which part of a reference was invalid.
    public enum Field: String, Sendable {
        case repository
        case tag
        case digest
    }

    public let field: Field
    /// A short explanation, safe to return to a client.
    public let reason: String

    init(_ field: Field, _ reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "invalid \(field.rawValue): \(reason)" }
}
