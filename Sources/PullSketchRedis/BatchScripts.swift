/// The Lua scripts that change a shard. Each runs atomically, so a merge lands wholly in one live
/// batch and a seal moves a whole live batch at once; no clock decides where a merge belongs.
///
/// A Redis over its `maxmemory` (with `noeviction`) refuses a script's first write when that write
/// may grow memory, and lets every later one through: it never stops a script midway. A merge,
/// which grows Redis, is refused whole and the node puts the part back into its tracker. The reconciler's scripts
/// begin with a write that frees or moves (`DEL`, `RENAME`, `PEXPIRE`, `ZREMRANGEBYSCORE`), so
/// they run at the limit, and the batches they write and delete bring Redis back under it; keep
/// that order when changing them.
enum BatchScripts {
    /// How the merge script's error reply for a sketch mismatch begins.
    static let fingerprintMismatch = "PULLSKETCH_FINGERPRINT "
    /// How the merge script's error reply begins when a key holds the wrong type.
    static let wrongType = "PULLSKETCH_WRONGTYPE "

    /// Lua that returns an error before any write when one of the merge's keys holds another type
    /// than PullSketch writes there (another writer in PullSketch's key space): a script error
    /// after its first write would keep the writes made before it.
    private static let checkTypes: String = {
        let types = ["sketch": "string", "usage": "string", "names": "set"]
        let expected = batchKeyNames.map { "'\(types[$0] ?? "hash")'" } + ["'string'", "'hash'", "'zset'", "'hash'", "'string'"]
        return """
            local expected = {\(expected.joined(separator: ", "))}
            for k = 1, #KEYS do
              local found = redis.call('TYPE', KEYS[k]).ok
              if found ~= 'none' and found ~= expected[k] then
                return redis.error_reply('\(wrongType)' .. KEYS[k] .. ' holds a ' .. found .. ', not a ' .. expected[k])
              end
            end
            """
    }()

    /// The Lua names of a batch's keys, in `BatchKeys.all` order.
    private static let batchKeyNames = [
        "fetches", "checks", "pulls", "pulled", "used", "digest", "sketch", "usage", "tail", "tailpulls", "tailpulled", "tailused",
        "tailunnamed", "tailunnameduses", "names", "members",
    ]
    static let batchKeyCount = batchKeyNames.count
    /// The tail hash's place in KEYS, counting from 1.
    private static let tailPosition = batchKeyNames.firstIndex(of: "tail")! + 1

    /// Applies one window part to the shard's live batch, at most once per (node, sequence), and
    /// only if the shard still has every part the node was told it applied.
    ///
    /// KEYS: the 16 live batch keys (`BatchKeys.all`), fingerprint, ledger, ledger:touched,
    /// confirmed, merge:usage.
    /// ARGV: node, sequence, expected (the node's last acknowledged sequence on this shard),
    /// fingerprint, ledger memory (ms), #hot, #cells, #bits, #tails, tail mass, tail last pulled,
    /// tail last used, overflow (0/1), #names, unnamed pulls of overflowed repositories, usage
    /// bitmap (1 when the usage bits come as one bitmap, the last argument; #bits is then 0); then
    /// per hot entry field, fetches, checks, pulls, last pulled ("" for none), last used, digest
    /// time, digest (or ""); per cell its BITFIELD offset (`#` and the index), count; per usage bit
    /// its index; per tail repository name, pulls, last pulled ("" for none), last used, unnamed
    /// pulls, unnamed uses; per tail name its field; the usage bitmap, if sent.
    ///
    /// A number handed to `redis.call` is printed first (`%.17g`), so the script passes its
    /// arguments' strings through as they came; many usage bits go in with one `BITOP`, not a
    /// `SETBIT` each.
    ///
    /// Returns {outcome, ledger sequence, confirmed sequence}: outcome 1 applied, 0 the ledger
    /// already had it, 2 rewound: the ledger is behind `expected` (Redis lost merges it had
    /// acknowledged, or the reconciler discarded them), nothing was written, and the node must send
    /// its parts after the ledger sequence again first. A part with sequence 0 and no content asks
    /// for the state alone. The ledger's clock is Redis's (`TIME`), so no node's clock can make it
    /// forget another node.
    static let merge = """
        local \(batchKeyNames.joined(separator: ", ")) = unpack(KEYS, 1, \(batchKeyCount))
        local fingerprintKey, ledger, touched, confirmed, mergeUsage = unpack(KEYS, \(batchKeyCount + 1), \(batchKeyCount + 5))
        \(checkTypes)
        local fingerprint = redis.call('GET', fingerprintKey)
        if fingerprint and fingerprint ~= ARGV[4] then
          return redis.error_reply('\(fingerprintMismatch)shard sketch is ' .. fingerprint .. ', window sketch is ' .. ARGV[4])
        end
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local stale = redis.call('ZRANGEBYSCORE', touched, '-inf', '(' .. (now - tonumber(ARGV[5])), 'LIMIT', 0, 1000)
        for _, node in ipairs(stale) do
          redis.call('HDEL', ledger, node)
          redis.call('HDEL', confirmed, node)
          redis.call('ZREM', touched, node)
        end
        local node, sequence = ARGV[1], tonumber(ARGV[2])
        local applied = tonumber(redis.call('HGET', ledger, node) or '0')
        local stored = tonumber(redis.call('HGET', confirmed, node) or '0')
        if applied < tonumber(ARGV[3]) then return {2, applied, stored} end
        if sequence <= applied then return {0, applied, stored} end
        if not fingerprint then redis.call('SET', fingerprintKey, ARGV[4]) end
        local function raise(key, field, value)
          if value == '' then return end
          local current = redis.call('HGET', key, field)
          if not current or tonumber(value) > tonumber(current) then redis.call('HSET', key, field, value) end
        end
        local function add(key, field, value)
          if value ~= '0' then redis.call('HINCRBY', key, field, value) end
        end
        local hot, cells, bits, tails = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
        local nameCount = tonumber(ARGV[14])
        local i = 17
        for _ = 1, hot do
          local field = ARGV[i]
          add(fetches, field, ARGV[i + 1])
          add(checks, field, ARGV[i + 2])
          add(pulls, field, ARGV[i + 3])
          raise(pulled, field, ARGV[i + 4])
          raise(used, field, ARGV[i + 5])
          if ARGV[i + 7] ~= '' then
            local current = redis.call('HGET', digest, field)
            local at = current and tonumber(string.match(current, '^(%-?%d+) '))
            if not at or tonumber(ARGV[i + 6]) >= at then
              redis.call('HSET', digest, field, ARGV[i + 6] .. ' ' .. ARGV[i + 7])
            end
          end
          i = i + 8
        end
        local increments, n = {}, 0
        for c = 1, cells do
          increments[n + 1], increments[n + 2], increments[n + 3], increments[n + 4] = 'INCRBY', 'u32', ARGV[i], ARGV[i + 1]
          n = n + 4
          i = i + 2
          if n >= 2048 or c == cells then
            redis.call('BITFIELD', sketch, 'OVERFLOW', 'SAT', unpack(increments, 1, n))
            n = 0
          end
        end
        for _ = 1, bits do
          redis.call('SETBIT', usage, ARGV[i], '1')
          i = i + 1
        end
        if ARGV[16] == '1' then
          redis.call('SET', mergeUsage, ARGV[#ARGV])
          redis.call('BITOP', 'OR', usage, usage, mergeUsage)
          redis.call('DEL', mergeUsage)
        end
        add(tail, 'mass', ARGV[10])
        raise(tail, 'pulled', ARGV[11])
        raise(tail, 'used', ARGV[12])
        if ARGV[13] == '1' then redis.call('HSET', tail, 'overflow', '1') end
        add(tail, 'unnamed', ARGV[15])
        for _ = 1, tails do
          add(tailpulls, ARGV[i], ARGV[i + 1])
          raise(tailpulled, ARGV[i], ARGV[i + 2])
          raise(tailused, ARGV[i], ARGV[i + 3])
          add(tailunnamed, ARGV[i], ARGV[i + 4])
          add(tailunnameduses, ARGV[i], ARGV[i + 5])
          i = i + 6
        end
        for first = i, i + nameCount - 1, 4096 do
          redis.call('SADD', names, unpack(ARGV, first, math.min(first + 4095, i + nameCount - 1)))
        end
        local first = string.match(redis.call('HGET', members, node) or '', '^(%d+) ') or ARGV[2]
        redis.call('HSET', members, node, first .. ' ' .. ARGV[2])
        redis.call('HSET', ledger, node, ARGV[2])
        redis.call('ZADD', touched, now, node)
        return {1, sequence, stored}
        """

    /// Renames the live batch to sealed batch ARGV[2] and lists it, moving the live batch's
    /// fingerprint and the seal time into the batch so it can be read alone (the next live batch
    /// takes the fingerprint of its first merge, so the sketch shape can change between batches).
    /// The caller chose the number from `…:sealseq` as it read it (ARGV[1], "0" for none) and from
    /// the reconciler's ledger, so that a Redis that lost its data never reuses a reconciled
    /// number; if `…:sealseq` changed since, nothing is done. Every key is declared, none built here,
    /// as a Redis Cluster requires.
    /// KEYS: 16 live keys, the 16 keys of batch ARGV[2], sealed list, fingerprint, sealseq.
    /// ARGV: sealseq as read, batch number, now (ms). Returns the batch number; 0, changing nothing,
    /// when the live batch is empty; -1, changing nothing, when sealseq moved.
    static let seal = """
        local parts = \(batchKeyCount)
        local sealedList, fingerprintKey, sequence = unpack(KEYS, 2 * parts + 1, 2 * parts + 3)
        if (redis.call('GET', sequence) or '0') ~= ARGV[1] then return -1 end
        local present = 0
        for k = 1, parts do present = present + redis.call('EXISTS', KEYS[k]) end
        if present == 0 then return 0 end
        for k = 1, parts do
          if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('RENAME', KEYS[k], KEYS[parts + k]) end
        end
        redis.call('SET', sequence, ARGV[2])
        local tail = KEYS[parts + \(tailPosition)]
        local fingerprint = redis.call('GET', fingerprintKey)
        if fingerprint then redis.call('HSET', tail, 'fingerprint', fingerprint) end
        redis.call('DEL', fingerprintKey)
        redis.call('HSET', tail, 'sealed', ARGV[3])
        redis.call('RPUSH', sealedList, ARGV[2])
        return tonumber(ARGV[2])
        """

    /// Takes or renews the shard's lease for owner ARGV[1] for ARGV[2] ms. KEYS: lease. Returns 1
    /// when the caller holds the lease, 0 when another owner does.
    static let lease = """
        local holder = redis.call('GET', KEYS[1])
        if holder and holder ~= ARGV[1] then return 0 end
        redis.call('PEXPIRE', KEYS[1], ARGV[2])  -- renews a held lease; first, see the type's comment
        if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
        return 1
        """

    /// Says reconciler ARGV[1] is alive, by Redis's clock, forgets those silent for ARGV[2] ms, and
    /// returns the ones alive. KEYS: the reconcilers' sorted set. ARGV[2] "0" removes ARGV[1].
    static let reconcilers = """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        if ARGV[2] == '0' then
          redis.call('ZREM', KEYS[1], ARGV[1])
        else
          redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])))
          redis.call('ZADD', KEYS[1], now, ARGV[1])
        end
        return redis.call('ZRANGE', KEYS[1], 0, -1)
        """

    /// Gives the lease up if owner ARGV[1] holds it. KEYS: lease.
    static let release = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        return 1
        """

    /// Deletes sealed batch ARGV[1], unlists it, and confirms to its nodes the windows it held.
    /// KEYS: 16 batch keys, sealed list, confirmed. ARGV: batch number, then node id and sequence
    /// pairs.
    static let delete = """
        redis.call('DEL', unpack(KEYS, 1, \(batchKeyCount)))
        redis.call('LREM', KEYS[\(batchKeyCount + 1)], 0, ARGV[1])
        if #ARGV > 1 then redis.call('HSET', KEYS[\(batchKeyCount + 2)], unpack(ARGV, 2)) end
        return 1
        """

    /// Discards everything of the shard PostgreSQL does not hold yet — the live batch and the
    /// listed sealed batches — and sets the ledger to what PostgreSQL holds, so that every node
    /// sends its parts after that again. Used after Redis went back to an older state.
    /// KEYS: 16 live keys, fingerprint, ledger, ledger:touched, confirmed, sealed list, then 16 keys
    /// per listed sealed batch.
    /// ARGV: number of sealed batches, their numbers, then node id and sequence pairs.
    static let rewind = """
        local parts = \(batchKeyCount)
        local fingerprintKey, ledger, touched, confirmed, sealedList = unpack(KEYS, parts + 1, parts + 5)
        local batches = tonumber(ARGV[1])
        redis.call('DEL', unpack(KEYS, 1, parts))
        for b = 1, batches do
          redis.call('DEL', unpack(KEYS, parts + 5 + (b - 1) * parts + 1, parts + 5 + b * parts))
          redis.call('LREM', sealedList, 0, ARGV[1 + b])
        end
        redis.call('DEL', fingerprintKey, ledger, confirmed)
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        for i = batches + 2, #ARGV, 2 do
          redis.call('HSET', ledger, ARGV[i], ARGV[i + 1])
          redis.call('HSET', confirmed, ARGV[i], ARGV[i + 1])
          redis.call('ZADD', touched, now, ARGV[i])
        end
        return 1
        """
}
