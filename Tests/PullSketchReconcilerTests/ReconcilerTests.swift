import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchReconciler
import PullSketchRedis
import PullSketchStore
import PullSketchTestSupport
import Testing

@Suite(.postgresServer) struct ReconcilerTests {
    @Test func passesSealWriteAndDeleteEveryBatchAndRowsEqualTheTruth() async throws {
        let pipeline = try Pipeline(seed: 1)
        let reconciler = pipeline.reconciler()
        var applied = 0
        for _ in 0..<3 {
            try pipeline.pull(3_000)
            let pass = try await reconciler.reconcileOnce()
            #expect(pass.alreadyReconciled == 0 && pass.shardsLeasedElsewhere == 0)
            applied += pass.applied
        }
        #expect(applied == 3 * Pipeline.shardCount)
        #expect(try pipeline.ledgerCount() == applied)
        #expect(try pipeline.sealedBatchCount() == 0)
        try pipeline.expectRowsEqualTruth()
        let exact = try pipeline.connection.query("SELECT bool_and(last_pulled_exact) AND bool_and(pull_count_error = 0) FROM tag_stats").rows
        #expect(exact == [["t"]])
    }

    @Test func aCancelledPassDoesNotStopTheNextOne() async throws {
        let pipeline = try Pipeline(seed: 3)
        let reconciler = pipeline.reconciler()
        try pipeline.pull(1_000)
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await reconciler.reconcileOnce()
        }
        #expect(try await cancelled.value.applied == 0, "a pass cancelled before it starts writes nothing")
        let next = try await reconciler.reconcileOnce()
        #expect(next.applied == Pipeline.shardCount)
        try pipeline.expectRowsEqualTruth()
    }

    @Test func tailCountsThroughRedisAreUpperBoundsWithinTheirErrorAndNeverDateAPullEarly() async throws {
        let pipeline = try Pipeline(seed: 10)
        let tags = 2_000
        // The catalog knows every tag and manifest (names as `Pipeline` makes them), as push
        // events would have told it.
        try pipeline.connection.execute(script: """
            INSERT INTO repositories (name) SELECT 'team/app' || r FROM generate_series(0, \(Pipeline.repositories - 1)) r;
            INSERT INTO catalog_tags (repository_id, tag, digest)
                SELECT id, 'v' || n, 'sha256:' || lpad(to_hex(n), 64, '0') FROM repositories, generate_series(0, \(tags - 1)) n;
            INSERT INTO catalog_manifests (repository_id, digest)
                SELECT id, 'sha256:' || lpad(to_hex(n), 64, '0') FROM repositories, generate_series(0, \(tags - 1)) n;
            """)
        let reconciler = pipeline.reconciler()
        for _ in 0..<3 {
            try pipeline.pull(20_000, tags: tags, hotCapacity: 64)
            try await reconciler.reconcileOnce()
        }
        let stored = try pipeline.rows()
        var withinBound = 0
        for (key, truth) in pipeline.truth {
            let row = try #require(stored[key], "no row for \(key)")
            #expect(row.count >= truth.count, "\(key) undercounted: \(row) for \(truth)")
            #expect(row.last >= truth.last, "\(key) dated before its last pull")
            #expect(row.used >= truth.used, "\(key) dated before its last use")
            if row.count - row.error <= truth.count { withinBound += 1 }
        }
        let approximate = stored.values.filter { $0.error > 0 }.count
        #expect(approximate > pipeline.truth.count / 2, "the workload did not reach the tail")
        #expect(Double(withinBound) / Double(pipeline.truth.count) >= 1 - SketchParameters().delta)
    }

    /// Where a reconciler can die between the steps of a pass (docs/design.md §2.4).
    enum CrashPoint: CaseIterable {
        case afterSeal, afterRead, afterCommitBeforeDelete
    }

    /// The dead reconciler's steps are run by hand up to the crash point and abandoned; a new
    /// reconciler then takes over.
    @Test(arguments: CrashPoint.allCases)
    func aCrashBetweenStepsRepeatsNothingAndLosesNothing(at point: CrashPoint) async throws {
        let pipeline = try Pipeline(seed: 2)
        try pipeline.pull(3_000)
        let writer = BatchWriter(connection: try PostgresConnection(pipeline.database), shardCount: Pipeline.shardCount)
        for shard in 0..<Pipeline.shardCount {
            let number = try #require(try pipeline.store.seal(shard: shard))
            guard point != .afterSeal else { continue }
            let batch = try #require(try pipeline.store.readBatch(shard: shard, number: number))
            guard point != .afterRead else { continue }
            #expect(try writer.write(batch) != .alreadyReconciled)
        }
        try pipeline.pull(1_000)
        let pass = try await pipeline.reconciler().reconcileOnce()
        #expect(pass.alreadyReconciled == (point == .afterCommitBeforeDelete ? Pipeline.shardCount : 0))
        #expect(pass.applied == (point == .afterCommitBeforeDelete ? 1 : 2) * Pipeline.shardCount)
        #expect(try pipeline.sealedBatchCount() == 0)
        try pipeline.expectRowsEqualTruth()
    }

    @Test func aFailureInsideATransactionRollsItAllBackSkipsOnlyItsShardAndTheBatchIsAppliedLater() async throws {
        let pipeline = try Pipeline(seed: 3)
        // Fails the first manifest upsert, after the tag upserts of the same transaction ran.
        try pipeline.connection.execute(script: """
            CREATE SEQUENCE injected_faults;
            CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('injected_faults') = 1 THEN RAISE EXCEPTION 'injected fault'; END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER fail_once AFTER INSERT ON manifest_stats FOR EACH STATEMENT EXECUTE FUNCTION fail_once();
            """)
        try pipeline.pull(3_000)
        let reconciler = pipeline.reconciler()
        let failed = try await reconciler.reconcileOnce()
        #expect(failed.shardsFailed == 1 && failed.applied == Pipeline.shardCount - 1, "\(failed)")
        #expect(try pipeline.ledgerCount() == Pipeline.shardCount - 1)
        #expect(try pipeline.sealedBatchCount() == 1)
        let pass = try await reconciler.reconcileOnce()
        #expect(pass.applied == 1)
        // Had the failed transaction kept its tag rows, the retry would have counted them twice.
        try pipeline.expectRowsEqualTruth()
    }

    @Test func aReconcilerProcessKilledMidTransactionLosesNothingAndDoublesNothing() async throws {
        let pipeline = try Pipeline(seed: 4)
        for _ in 0..<3 {
            try pipeline.pull(40_000, tags: 10_000)
            for shard in 0..<Pipeline.shardCount { try pipeline.store.seal(shard: shard) }
        }
        let batches = try pipeline.sealedBatchCount()
        let application = "killed_reconciler"
        var kills = 0
        for _ in 0..<2 {
            let process = try startReconcilerProcess(pipeline, application: application)
            // Wait for the process's transaction to be open, then kill it without warning. The
            // bounds here only end a failing run: the whole suite on two cores can starve a process.
            let deadline = ContinuousClock.now + .seconds(90)
            while try pipeline.connection.query(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL", [application]
            ).rows.isEmpty {
                try #require(ContinuousClock.now < deadline, "the reconciler never opened a transaction")
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            kills += 1
        }
        #expect(kills == 2)
        #expect(try pipeline.ledgerCount() < batches, "everything was applied before the kills")
        let survivor = try startReconcilerProcess(pipeline, application: application)
        defer {
            kill(survivor.processIdentifier, SIGKILL)
            survivor.waitUntilExit()
        }
        let deadline = ContinuousClock.now + .seconds(180)
        while try pipeline.sealedBatchCount() > 0 {
            try #require(ContinuousClock.now < deadline, "batches left in Redis")
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try pipeline.ledgerCount() == batches)
        try pipeline.expectRowsEqualTruth()
    }

    /// `pullsketch reconcile` from the build, on the pipeline's Redis and database, with a short
    /// lease so a killed process's shards are free again quickly.
    func startReconcilerProcess(_ pipeline: Pipeline, application: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = builtProduct("pullsketch")
        process.arguments = ["reconcile", "--database", pipeline.database + " application_name=\(application)"]
        process.environment = [
            "PULL_METRICS_REDIS_PORT": String(pipeline.endpoint.port),
            "PULLSKETCH_SHARDS": String(Pipeline.shardCount),
            "PULLSKETCH_RECONCILE_INTERVAL_MS": "100",
            "PULLSKETCH_LEASE_MS": "300",
        ].merging(environment) { $1 }
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// `reconcile_workers` runs that many reconcilers in one process: each announces itself, works
    /// its share of the shards on connections of its own, and every pull still counts once.
    @Test func aReconcileProcessWithTwoWorkersSplitsTheShardsBetweenThemAndCountsEveryPullOnce() async throws {
        let pipeline = try Pipeline(seed: 62)
        let application = "two_workers"
        // Leases that outlast a pass slowed by the whole suite on two cores, so each worker keeps
        // the shards it took.
        let process = try startReconcilerProcess(
            pipeline, application: application, environment: ["PULLSKETCH_RECONCILE_WORKERS": "2", "PULLSKETCH_LEASE_MS": "20000"]
        )
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        func connections() throws -> Int {
            Int(try pipeline.connection.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [application]).rows[0][0]!)!
        }
        // The bound only ends a failing run: the whole suite on two cores can starve a process.
        let deadline = ContinuousClock.now + .seconds(180)
        while try pipeline.announcedReconcilers() != 2 || pipeline.leaseHolders().values.sorted() != [2, 2] || connections() != 2 {
            try #require(ContinuousClock.now < deadline, "two workers never each held two shards on connections of their own")
            try pipeline.pull(200)
            try await Task.sleep(for: .milliseconds(200))
        }
        try pipeline.pull(3_000)
        // A bound of its own: the split above may have used most of its own (CI once saw the two
        // together pass 180 s by 5 s).
        try await waitFor("every pull reconciled", within: .seconds(180)) { try pipeline.rows() == pipeline.truth }
        try pipeline.expectRowsEqualTruth()
    }

    @Test func aReconcilerWithAnotherShardCountRefusesToStartUntilTheOldBatchesAreDrained() async throws {
        let pipeline = try Pipeline(seed: 7)
        try pipeline.pull(300)
        for shard in 0..<Pipeline.shardCount { try pipeline.store.seal(shard: shard) }
        try pipeline.pull(100)  // live batches too
        func reconcile(shards: Int) throws -> String {
            try ChildProcess.run(builtProduct("pullsketch").path, ["reconcile", "--database", pipeline.database], environment: [
                "PULL_METRICS_REDIS_PORT": String(pipeline.endpoint.port), "PULLSKETCH_SHARDS": String(shards), "PULLSKETCH_STRIPES": "8",
            ])
        }
        #expect {
            try reconcile(shards: 8)
        } throws: { error in
            "\(error)".contains("merged with 4 shards, and this process runs with 8")
        }
        #expect(try pipeline.ledgerCount() == 0, "the refused reconciler wrote nothing")
        // Drained by a reconciler of the old count, the batches no longer stand in the way.
        let old = try startReconcilerProcess(pipeline, application: "old-layout")
        defer { old.terminate() }
        let deadline = ContinuousClock.now + .seconds(30)
        while try pipeline.rows() != pipeline.truth {
            try #require(ContinuousClock.now < deadline, "not drained")
            try await Task.sleep(for: .milliseconds(100))
        }
        old.terminate()
        old.waitUntilExit()
        #expect(try pipeline.store.otherLayoutsWaiting().isEmpty)
        #expect(try BatchStore(connection: try connectRedis(pipeline.endpoint), shardCount: 8).otherLayoutsWaiting().isEmpty)
    }

    /// A Redis that may evict keys (here every key, least recently used first, past 64 MB) can lose
    /// pulls or count them twice without a word, so the node, the reconciler and the import refuse
    /// to start on it, before they reach the database, saying why without the usage lines of an
    /// argument error.
    @Test func theNodeTheReconcilerAndTheImportRefuseARedisThatMayEvictKeys() throws {
        let redis = try RedisServer(options: ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
        let environment = ["PULL_METRICS_REDIS_PORT": String(redis.port), "PULLSKETCH_DATABASE_URL": "host=127.0.0.1 port=1 dbname=none"]
        for arguments in [["reconcile"], ["serve"], ["import", "--file", "/dev/null", "--until", "2026-01-01T00:00:00Z"]] {
            // Started, not run to completion: one that does not refuse runs on, and is stopped.
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-evicting-\(UUID().uuidString).log")
            defer { try? FileManager.default.removeItem(at: log) }
            let process = try ChildProcess(builtProduct("pullsketch"), arguments, environment: environment, log: log)
            #expect(process.exits(within: 20), "\(arguments[0]) stopped at once")
            process.kill()
            let output = try String(contentsOf: log, encoding: .utf8)
            #expect(output.contains("maxmemory 67108864 bytes, maxmemory-policy allkeys-lru"), "\(arguments[0]): \(output)")
            #expect(!output.contains("Usage:"), "a refusal is not an argument error: \(output)")
        }
    }

    /// A reconciler refuses to start on a database without PullSketch's schema, or behind this
    /// build's, and says what to run, rather than failing every batch.
    @Test func theReconcilerRefusesADatabaseThatLacksAMigration() throws {
        let redis = try RedisServer()
        let database = try PostgresServer.current!.makeDatabase()
        let last = try #require(Schema.migrations.last)
        for migrated in [false, true] {
            if migrated {
                let connection = try PostgresConnection(database)
                try Schema.migrate(connection)
                try connection.query("DELETE FROM schema_migrations WHERE version = $1", [String(last.version)])
            }
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-outdated-\(UUID().uuidString).log")
            defer { try? FileManager.default.removeItem(at: log) }
            let process = try ChildProcess(builtProduct("pullsketch"), ["reconcile", "--database", database], environment: [
                "PULL_METRICS_REDIS_PORT": String(redis.port)
            ], log: log)
            #expect(process.exits(within: 20), "stopped at once")
            process.kill()
            let output = try String(contentsOf: log, encoding: .utf8)
            let expected = migrated ? "the database schema lacks migration \(last.version)" : "the database has no PullSketch schema"
            #expect(output.contains(expected + ": run `pullsketch migrate` with this build"), "\(output)")
            #expect(!output.contains("Usage:"), "a refusal is not an argument error: \(output)")
        }
    }

    @Test func twoReconcilersWhoseLeasesNeverHoldStillNeverApplyABatchTwice() async throws {
        let pipeline = try Pipeline(seed: 5)
        // A 1 ms lease has expired by the next call: both reconcilers work every shard, and only
        // the ledger stands between them and a double count.
        let reconcilers = [pipeline.reconciler(lease: .milliseconds(1)), pipeline.reconciler(lease: .milliseconds(1))]
        var applied = 0
        for _ in 0..<5 {
            try pipeline.pull(2_000)
            for shard in 0..<Pipeline.shardCount { try pipeline.store.seal(shard: shard) }
            let passes = try await withThrowingTaskGroup(of: Reconciler.Pass.self) { group in
                for reconciler in reconcilers { group.addTask { try await reconciler.reconcileOnce() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            applied += passes.reduce(0) { $0 + $1.applied }
        }
        #expect(try pipeline.sealedBatchCount() == 0)
        #expect(try pipeline.ledgerCount() == applied)
        try pipeline.expectRowsEqualTruth()
    }

    @Test func aShardLeasedByAnotherReconcilerIsLeftAloneUntilTheLeaseIsGiven() async throws {
        let pipeline = try Pipeline(seed: 6)
        // Leases long enough to outlast a slow pass on a busy machine.
        let holder = pipeline.reconciler(lease: .seconds(600))
        let other = pipeline.reconciler(lease: .seconds(600))
        try pipeline.pull(1_000)
        #expect(try await holder.reconcileOnce().applied == Pipeline.shardCount)
        try pipeline.pull(1_000)
        let skipped = try await other.reconcileOnce()
        #expect(skipped.shardsLeasedElsewhere == Pipeline.shardCount && skipped.applied == 0)
        #expect(try pipeline.sealedBatchCount() == 0, "the other reconciler sealed shards it does not hold")
        // A graceful stop gives the leases up; the other takes the shards at once.
        try await holder.run(cancelledAfter: .milliseconds(50))
        try pipeline.pull(1_000)
        let taken = try await other.reconcileOnce()
        #expect(taken.shardsLeasedElsewhere == 0 && taken.applied >= Pipeline.shardCount)
        #expect(try pipeline.sealedBatchCount() == 0)
        try pipeline.expectRowsEqualTruth()
    }

    @Test func whilePostgresIsDownEachShardKeepsOneBatchWaitingAndAllDrainWhenItIsBack() async throws {
        let server = try PostgresServer()  // its own cluster: this test stops it
        let pipeline = try Pipeline(seed: 7, database: try server.makeDatabase())
        let reconciler = pipeline.reconciler()
        try pipeline.pull(1_000)
        #expect(try await reconciler.reconcileOnce().applied == Pipeline.shardCount)
        server.stop()
        for _ in 0..<5 {
            try pipeline.pull(1_000)
            await #expect(throws: PostgresError.self) { try await reconciler.reconcileOnce() }
        }
        #expect(try pipeline.sealedBatchCount() == Pipeline.shardCount, "one waiting batch per shard, the rest live")
        try server.start()
        // The waiting batches, then what stayed live, in one pass.
        #expect(try await reconciler.reconcileOnce().applied == 2 * Pipeline.shardCount)
        #expect(try pipeline.sealedBatchCount() == 0)
        try pipeline.expectRowsEqualTruth()
    }

    @Test func aRedisThatLostItsDataNeverReusesAReconciledBatchNumber() async throws {
        let pipeline = try Pipeline(seed: 8)
        let reconciler = pipeline.reconciler()
        for _ in 0..<2 {
            try pipeline.pull(1_000)
            try await reconciler.reconcileOnce()
        }
        _ = try connectRedis(pipeline.endpoint).command(["FLUSHALL"])
        try pipeline.pull(1_000)
        let pass = try await reconciler.reconcileOnce()
        #expect(pass.applied == Pipeline.shardCount && pass.alreadyReconciled == 0)
        try pipeline.expectRowsEqualTruth()
    }

    @Test func aPassThatOutlastsTheIntervalIsFollowedByTheNextAtOnce() async throws {
        let pipeline = try Pipeline(seed: 12)
        let interval = Duration.seconds(24)
        try pipeline.pull(1_000)
        // The first pass seals every shard, then waits for this lock to write its ledger rows.
        let holder = try pipeline.connection
        try holder.execute(script: "BEGIN; LOCK TABLE reconciled_batches IN SHARE MODE")
        // Patient with Redis and its leases: on two busy cores a timeout would fail the pass.
        var redis = pipeline.endpoint
        redis.timeout = 60
        let reconciler = Reconciler(
            redis: redis, database: pipeline.database, shardCount: Pipeline.shardCount,
            configuration: ReconcilerConfiguration(interval: interval, leaseDuration: .seconds(300))
        )
        // On a thread of its own: between passes the loop runs off the reconciler's executor, and
        // the rest of the suite may keep the cooperative pool for longer than the interval.
        let running = Task(executorPreference: CPUBoundLane()) { try await reconciler.run() }
        defer { running.cancel() }
        let clock = ContinuousClock()
        let started = clock.now
        while try pipeline.sealedBatchCount() < Pipeline.shardCount {
            try #require(clock.now - started < .seconds(300), "the first pass never sealed")
            try await Task.sleep(for: .milliseconds(20))
        }
        try pipeline.pull(1_000)  // live, for the second pass
        try await Task.sleep(for: interval + .seconds(1))
        try holder.execute(script: "COMMIT")
        let watcher = try pipeline.connection
        while Int(try watcher.query("SELECT count(*) FROM reconciled_batches").rows[0][0]!)! < 2 * Pipeline.shardCount {
            try #require(clock.now - started < .seconds(600), "the passes never wrote their batches")
            try await Task.sleep(for: .milliseconds(50))
        }
        running.cancel()
        try await running.value
        // Timed by PostgreSQL (each ledger row's transaction start), not by this busy test process:
        // from the first pass's last batch (each shard's batch 1) to the second's first (batch 2).
        let gap = Double(try watcher.query("""
            SELECT extract(epoch FROM min(reconciled_at) FILTER (WHERE batch = 2) - max(reconciled_at) FILTER (WHERE batch = 1))
            FROM reconciled_batches
            """).rows[0][0]!)!
        #expect(gap < 12, "the second pass began \(gap) s after the first ended, as if it had waited for the 24 s interval")
        try pipeline.expectRowsEqualTruth()
    }

    @Test func ledgerRowsOlderThanThirtyDaysAreForgottenButEachShardKeepsItsNewest() async throws {
        let pipeline = try Pipeline(seed: 9)
        try pipeline.connection.execute(script: """
            INSERT INTO reconciled_batches (shard, batch, pulls, tail_mass, epsilon, delta, reconciled_at) VALUES
                (0, 1, 1, 0, 0, 0, now() - interval '40 days'), (0, 2, 1, 0, 0, 0, now() - interval '20 days'),
                (1, 7, 1, 0, 0, 0, now() - interval '40 days');
            INSERT INTO reconciled_windows (shard, node, sequence, reconciled_at) VALUES
                (0, 'node-gone', 9, now() - interval '40 days'), (0, 'import:quay-logentry3:quay', 120, now() - interval '400 days')
            """)
        let writer = BatchWriter(connection: try pipeline.connection, shardCount: Pipeline.shardCount)
        #expect(try writer.forgetLedger(reconciledBefore: Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch - 30 * 86_400_000)) == 1)
        #expect(try writer.lastReconciledBatches() == [2, 7, 0, 0], "shard 1's only row is old but is its seal floor")
        #expect(try writer.reconciledWindows(shard: 0) == ["import:quay-logentry3:quay": 120], "an import's ledger is kept")
        try pipeline.connection.query("UPDATE reconciled_batches SET reconciled_at = now() - interval '40 days'")
        try pipeline.pull(1_000)
        try await pipeline.reconciler().reconcileOnce()
        let left = try pipeline.connection.query("SELECT shard, batch FROM reconciled_batches ORDER BY shard").rows
        #expect(left == [["0", "3"], ["1", "8"], ["2", "1"], ["3", "1"]], "a pass forgets old rows")
    }
}

extension Reconciler {
    /// Runs the service and cancels it after `delay`, as a shutdown would.
    func run(cancelledAfter delay: Duration) async throws {
        let task = Task { try await run() }
        try await Task.sleep(for: delay)
        task.cancel()
        try await task.value
    }
}
