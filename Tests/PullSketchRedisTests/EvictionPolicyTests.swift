import PullSketchRedis
import PullSketchTestSupport
import Testing

/// `EvictionPolicy` read from real Redis servers, their settings changed with `CONFIG SET`.
@Suite struct EvictionPolicyTests {
    @Test func onlyAMemoryLimitWithAPolicyOtherThanNoevictionMayEvict() throws {
        let server = try RedisServer()
        let redis = try connectRedis(RedisEndpoint(port: server.port))
        func set(_ name: String, _ value: String) throws { _ = try redis.command(["CONFIG", "SET", name, value]) }
        func policy() throws -> EvictionPolicy { try #require(try EvictionPolicy.of(redis).first) }

        #expect(try policy().maxMemory == 0 && policy().policy == "noeviction" && !policy().mayEvict, "Redis's defaults")
        try set("maxmemory-policy", "allkeys-lru")
        #expect(try !policy().mayEvict, "no limit, nothing to evict for")
        try set("maxmemory", "64mb")
        #expect(try policy().mayEvict && policy().policy == "allkeys-lru" && policy().maxMemory == 64 << 20)
        try set("maxmemory-policy", "volatile-lru")
        #expect(try policy().mayEvict, "event claims carry a time to live")
        try set("maxmemory-policy", "noeviction")
        #expect(try !policy().mayEvict, "a full Redis refuses writes instead")
    }

    @Test func everyMasterOfAClusterIsAsked() throws {
        let cluster = try RedisClusterServer()
        let redis = try connectRedis(RedisEndpoint(port: cluster.servers[0].port, clusterNodes: cluster.nodes))
        #expect(try EvictionPolicy.of(redis).count == 3 && EvictionPolicy.of(redis).allSatisfy { !$0.mayEvict })
        let last = try #require(try cluster.masters().last)
        let master = try RedisConnection(RedisEndpoint(port: last.port))
        for (name, value) in [("maxmemory", "64mb"), ("maxmemory-policy", "allkeys-random")] {
            _ = try master.command(["CONFIG", "SET", name, value])
        }
        #expect(try EvictionPolicy.of(redis).filter(\.mayEvict).map(\.policy) == ["allkeys-random"], "the one master that may evict")
    }

    @Test func anAnswerWithoutTheFieldsIsNoPolicy() {
        #expect(EvictionPolicy(info: "# Memory\r\nused_memory:1024\r\n") == nil)
        #expect(EvictionPolicy(info: "# Memory\r\nmaxmemory:1048576\r\nmaxmemory_policy:allkeys-lfu\r\n")?.mayEvict == true)
    }
}
