/// One reply of the Redis protocol (RESP2).
public enum RedisReply: Hashable, Sendable {
    case bulk([UInt8])
    case status(String)
    case integer(Int64)
    case null
    case array([RedisReply])
    /// An error reply; `RedisConnection.command` throws it, pipelines return it in place.
    case error(String)

    /// The reply as text, for bulk and status replies.
    public var string: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    /// The reply as an integer, for integer replies and bulk replies holding a decimal number.
    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk: string.flatMap { Int64($0) }
        default: nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { elements } else { nil }
    }
}
