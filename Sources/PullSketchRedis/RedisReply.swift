/// One reply of the Redis protocol (RESP2).
public enum RedisReply: Hashable, Sendable {
    case bulk([UInt8])
    case status(String)
    case integer(Int64)
    case null
    case array([RedisReply])
    /// An error reply; `RedisCommands.command` throws it, pipelines return it in place.
    case error(String)
}
