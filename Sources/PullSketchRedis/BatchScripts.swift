/// The Lua scripts that change a shard. Each runs atomically, so a merge lands wholly in one live
/// batch and a seal moves a whole live batch at once; no clock decides where a merge belongs.
enum BatchScripts {
    /// How the merge script's error reply for a sketch mismatch begins.
    static let fingerprintMismatch = "PULLSKETCH_FINGERPRINT "

    /// Applies one window part to the shard's live batch, at most once per (node, sequence).
    ///
    /// KEYS: the 8 live keys (`ShardLayout.batchParts` order), fingerprint, ledger, ledger:touched.
    /// ARGV: node, sequence, fingerprint, now (ms), forget-before (ms), #hot, #cells, #tails,
    /// tail mass, tail last pulled, overflow (0/1); then per hot entry field, fetches, checks, last
    /// seen, digest time, digest (or ""); per cell index, count; per tail repository name, pulls,
    /// last pulled. Returns 1 when applied, 0 when the ledger already had it.
    static let merge = """
        local fingerprint = redis.call('GET', KEYS[9])
        if fingerprint and fingerprint ~= ARGV[3] then
          return redis.error_reply('\(fingerprintMismatch)shard sketch is ' .. fingerprint .. ', window sketch is ' .. ARGV[3])
        end
        local stale = redis.call('ZRANGEBYSCORE', KEYS[11], '-inf', '(' .. ARGV[5], 'LIMIT', 0, 1000)
        for _, node in ipairs(stale) do
          redis.call('HDEL', KEYS[10], node)
          redis.call('ZREM', KEYS[11], node)
        end
        local applied = tonumber(redis.call('HGET', KEYS[10], ARGV[1]) or '0')
        if tonumber(ARGV[2]) <= applied then return 0 end
        if not fingerprint then redis.call('SET', KEYS[9], ARGV[3]) end
        local function raise(key, field, value)
          local current = redis.call('HGET', key, field)
          if not current or tonumber(value) > tonumber(current) then redis.call('HSET', key, field, value) end
        end
        local hot, cells, tails = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
        local i = 12
        for _ = 1, hot do
          local field = ARGV[i]
          if ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[1], field, ARGV[i + 1]) end
          if ARGV[i + 2] ~= '0' then redis.call('HINCRBY', KEYS[2], field, ARGV[i + 2]) end
          raise(KEYS[3], field, ARGV[i + 3])
          if ARGV[i + 5] ~= '' then
            local current = redis.call('HGET', KEYS[4], field)
            local at = current and tonumber(string.match(current, '^(%-?%d+) '))
            if not at or tonumber(ARGV[i + 4]) >= at then
              redis.call('HSET', KEYS[4], field, ARGV[i + 4] .. ' ' .. ARGV[i + 5])
            end
          end
          i = i + 6
        end
        local increments = {}
        for c = 1, cells do
          increments[#increments + 1] = 'INCRBY'
          increments[#increments + 1] = 'u32'
          increments[#increments + 1] = '#' .. ARGV[i]
          increments[#increments + 1] = ARGV[i + 1]
          i = i + 2
          if #increments >= 2048 or c == cells then
            redis.call('BITFIELD', KEYS[5], 'OVERFLOW', 'SAT', unpack(increments))
            increments = {}
          end
        end
        if ARGV[9] ~= '0' then
          redis.call('HINCRBY', KEYS[6], 'mass', ARGV[9])
          raise(KEYS[6], 'last', ARGV[10])
        end
        if ARGV[11] == '1' then redis.call('HSET', KEYS[6], 'overflow', '1') end
        for _ = 1, tails do
          redis.call('HINCRBY', KEYS[7], ARGV[i], ARGV[i + 1])
          raise(KEYS[8], ARGV[i], ARGV[i + 2])
          i = i + 3
        end
        redis.call('HSET', KEYS[10], ARGV[1], ARGV[2])
        redis.call('ZADD', KEYS[11], ARGV[4], ARGV[1])
        return 1
        """

    /// Renames the live batch to the shard's next sealed batch and lists it, copying the shard's
    /// fingerprint and the seal time into the batch so it can be read alone. The number is one more
    /// than the larger of `…:sealseq` and the floor ARGV[1] (the highest batch the reconciler's
    /// ledger has), so a Redis that lost its data never reuses a reconciled number.
    /// KEYS: 8 live keys, 8 batch keys with `#` for the number, sealed list, fingerprint, sealseq.
    /// ARGV: floor, now (ms). Returns the batch number, or 0, changing nothing, when the live batch
    /// is empty.
    static let seal = """
        local present = 0
        for k = 1, 8 do present = present + redis.call('EXISTS', KEYS[k]) end
        if present == 0 then return 0 end
        local number = math.max(tonumber(redis.call('GET', KEYS[19]) or '0'), tonumber(ARGV[1])) + 1
        redis.call('SET', KEYS[19], number)
        for k = 1, 8 do
          if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('RENAME', KEYS[k], (string.gsub(KEYS[8 + k], '#', number))) end
        end
        local tail = (string.gsub(KEYS[14], '#', number))
        local fingerprint = redis.call('GET', KEYS[18])
        if fingerprint then redis.call('HSET', tail, 'fingerprint', fingerprint) end
        redis.call('HSET', tail, 'sealed', ARGV[2])
        redis.call('RPUSH', KEYS[17], number)
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

    /// Deletes sealed batch ARGV[1] and unlists it. KEYS: 8 batch keys, sealed list.
    static let delete = """
        redis.call('DEL', unpack(KEYS, 1, 8))
        redis.call('LREM', KEYS[9], 0, ARGV[1])
        return 1
        """
}
