/// The Lua scripts that change a shard. Each runs atomically, so a merge lands wholly in one live
/// batch and a seal moves a whole live batch at once; no clock decides where a merge belongs.
enum BatchScripts {
    /// How the merge script's error reply for a sketch mismatch begins.
    static let fingerprintMismatch = "PULLSKETCH_FINGERPRINT "
    /// How the merge script's error reply begins when a key holds the wrong type.
    static let wrongType = "PULLSKETCH_WRONGTYPE "

    /// Lua that returns an error before any write when one of the merge's keys holds another type
    /// than PullSketch writes there (another writer in PullSketch's key space): a script error
    /// after its first write would keep the writes made before it.
    private static let checkTypes: String = {
        let strings: Set<String> = ["sketch", "usage"]
        let expected = batchKeyNames.map { strings.contains($0) ? "'string'" : "'hash'" } + ["'string'", "'hash'", "'zset'"]
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
    private static let batchKeyNames = ["fetches", "checks", "pulls", "pulled", "used", "digest", "sketch", "usage", "tail", "tailpulls", "tailpulled", "tailused"]
    static let batchKeyCount = batchKeyNames.count
    /// The tail hash's place in KEYS, counting from 1.
    private static let tailPosition = batchKeyNames.firstIndex(of: "tail")! + 1

    /// Applies one window part to the shard's live batch, at most once per (node, sequence).
    ///
    /// KEYS: the 12 live batch keys (`BatchKeys.all`), fingerprint, ledger, ledger:touched.
    /// ARGV: node, sequence, fingerprint, ledger memory (ms), #hot, #cells, #bits, #tails,
    /// tail mass, tail last pulled, tail last used, overflow (0/1); then per hot entry field,
    /// fetches, checks, pulls, last pulled ("" for none), last used, digest time, digest (or "");
    /// per cell index, count; per usage bit its index; per tail repository name, pulls, last pulled
    /// ("" for none), last used. Returns 1 when applied, 0 when the ledger already had it. The
    /// ledger's clock is Redis's (`TIME`), so no node's clock can make it forget another node.
    static let merge = """
        local \(batchKeyNames.joined(separator: ", ")) = unpack(KEYS, 1, \(batchKeyCount))
        local fingerprintKey, ledger, touched = unpack(KEYS, \(batchKeyCount + 1), \(batchKeyCount + 3))
        \(checkTypes)
        local fingerprint = redis.call('GET', fingerprintKey)
        if fingerprint and fingerprint ~= ARGV[3] then
          return redis.error_reply('\(fingerprintMismatch)shard sketch is ' .. fingerprint .. ', window sketch is ' .. ARGV[3])
        end
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local stale = redis.call('ZRANGEBYSCORE', touched, '-inf', '(' .. (now - tonumber(ARGV[4])), 'LIMIT', 0, 1000)
        for _, node in ipairs(stale) do
          redis.call('HDEL', ledger, node)
          redis.call('ZREM', touched, node)
        end
        local applied = tonumber(redis.call('HGET', ledger, ARGV[1]) or '0')
        if tonumber(ARGV[2]) <= applied then return 0 end
        if not fingerprint then redis.call('SET', fingerprintKey, ARGV[3]) end
        local function raise(key, field, value)
          if value == '' then return end
          local current = redis.call('HGET', key, field)
          if not current or tonumber(value) > tonumber(current) then redis.call('HSET', key, field, value) end
        end
        local function add(key, field, value)
          if value ~= '0' then redis.call('HINCRBY', key, field, value) end
        end
        local hot, cells, bits, tails = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
        local i = 13
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
        local increments = {}
        for c = 1, cells do
          increments[#increments + 1] = 'INCRBY'
          increments[#increments + 1] = 'u32'
          increments[#increments + 1] = '#' .. ARGV[i]
          increments[#increments + 1] = ARGV[i + 1]
          i = i + 2
          if #increments >= 2048 or c == cells then
            redis.call('BITFIELD', sketch, 'OVERFLOW', 'SAT', unpack(increments))
            increments = {}
          end
        end
        for _ = 1, bits do
          redis.call('SETBIT', usage, ARGV[i], 1)
          i = i + 1
        end
        if bits > 0 then
          add(tail, 'mass', ARGV[9])
          raise(tail, 'pulled', ARGV[10])
          raise(tail, 'used', ARGV[11])
        end
        if ARGV[12] == '1' then redis.call('HSET', tail, 'overflow', '1') end
        for _ = 1, tails do
          add(tailpulls, ARGV[i], ARGV[i + 1])
          raise(tailpulled, ARGV[i], ARGV[i + 2])
          raise(tailused, ARGV[i], ARGV[i + 3])
          i = i + 4
        end
        redis.call('HSET', ledger, ARGV[1], ARGV[2])
        redis.call('ZADD', touched, now, ARGV[1])
        return 1
        """

    /// Renames the live batch to the shard's next sealed batch and lists it, moving the live
    /// batch's fingerprint and the seal time into the batch so it can be read alone (the next live
    /// batch takes the fingerprint of its first merge, so the sketch shape can change between
    /// batches). The number is one more than the larger of `…:sealseq` and the floor ARGV[1] (the
    /// highest batch the reconciler's ledger has), so a Redis that lost its data never reuses a
    /// reconciled number.
    /// KEYS: 12 live keys, 12 batch keys with `#` for the number, sealed list, fingerprint, sealseq.
    /// ARGV: floor, now (ms). Returns the batch number, or 0, changing nothing, when the live batch
    /// is empty.
    static let seal = """
        local parts = \(batchKeyCount)
        local sealedList, fingerprintKey, sequence = unpack(KEYS, 2 * parts + 1, 2 * parts + 3)
        local present = 0
        for k = 1, parts do present = present + redis.call('EXISTS', KEYS[k]) end
        if present == 0 then return 0 end
        local number = math.max(tonumber(redis.call('GET', sequence) or '0'), tonumber(ARGV[1])) + 1
        redis.call('SET', sequence, number)
        local function sealedName(k) return (string.gsub(KEYS[parts + k], '#', number)) end
        for k = 1, parts do
          if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('RENAME', KEYS[k], sealedName(k)) end
        end
        local tail = sealedName(\(tailPosition))
        local fingerprint = redis.call('GET', fingerprintKey)
        if fingerprint then redis.call('HSET', tail, 'fingerprint', fingerprint) end
        redis.call('DEL', fingerprintKey)
        redis.call('HSET', tail, 'sealed', ARGV[2])
        redis.call('RPUSH', sealedList, number)
        return number
        """

    /// Takes or renews the shard's lease for owner ARGV[1] for ARGV[2] ms. KEYS: lease. Returns 1
    /// when the caller holds the lease, 0 when another owner does.
    static let lease = """
        local holder = redis.call('GET', KEYS[1])
        if holder and holder ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return 1
        """

    /// Gives the lease up if owner ARGV[1] holds it. KEYS: lease.
    static let release = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        return 1
        """

    /// Deletes sealed batch ARGV[1] and unlists it. KEYS: 12 batch keys, sealed list.
    static let delete = """
        redis.call('DEL', unpack(KEYS, 1, \(batchKeyCount)))
        redis.call('LREM', KEYS[\(batchKeyCount + 1)], 0, ARGV[1])
        return 1
        """
}
