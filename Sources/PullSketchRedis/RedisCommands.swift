/// What PullSketch asks of Redis: commands as binary-safe argument vectors, alone or pipelined. A
/// single `RedisConnection` and a `RedisCluster` both answer it, so the stores above never know
/// which one they talk to. Not thread-safe: one per task or thread, off any event loop.
public protocol RedisCommands: AnyObject {
    /// Sends all commands and returns their replies in order. Error replies are returned in place,
    /// so one failing command does not hide the others' results.
    func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply]
}

extension RedisCommands {
    /// Sends one command and waits for its reply; an error reply throws `.server`.
    public func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try command(bytes: arguments.map { Array($0.utf8) })
    }

    /// Sends one command of raw byte arguments and waits for its reply.
    public func command(bytes arguments: [[UInt8]]) throws(RedisError) -> RedisReply {
        let reply = try pipeline([arguments])[0]
        if case .error(let message) = reply { throw RedisError(.server, message) }
        return reply
    }
}

/// Opens what `endpoint` names: a cluster when it lists cluster nodes, else one connection.
public func connectRedis(_ endpoint: RedisEndpoint) throws(RedisError) -> any RedisCommands {
    endpoint.clusterNodes.isEmpty ? try RedisConnection(endpoint) : try RedisCluster(endpoint)
}
