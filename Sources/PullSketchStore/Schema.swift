public import PullSketchPostgres

/// One versioned change to the database schema.
public struct Migration: Hashable, Sendable {
    public let version: Int
    public let name: String
    let sql: String
}

/// PullSketch's schema (docs/design.md) as ordered migrations. All times are `timestamptz` (UTC).
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "statistics, catalog and ledger", sql: """
            CREATE TABLE repositories (
                id bigserial PRIMARY KEY,
                name text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE tag_stats (
                repository_id bigint NOT NULL REFERENCES repositories (id),
                tag text NOT NULL,
                fetches bigint NOT NULL DEFAULT 0,
                checks bigint NOT NULL DEFAULT 0,
                pull_count bigint NOT NULL DEFAULT 0,
                pull_count_error bigint NOT NULL DEFAULT 0,
                last_pulled_at timestamptz,
                last_pulled_exact boolean NOT NULL DEFAULT true,
                current_digest text,
                current_digest_at timestamptz,
                pushed_at timestamptz,
                deleted_at timestamptz,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (repository_id, tag)
            );
            CREATE INDEX tag_stats_by_repository_last_pulled ON tag_stats (repository_id, last_pulled_at);
            CREATE INDEX tag_stats_by_last_pulled ON tag_stats (last_pulled_at);
            CREATE INDEX tag_stats_by_repository_pull_count ON tag_stats (repository_id, pull_count);
            CREATE TABLE manifest_stats (
                repository_id bigint NOT NULL REFERENCES repositories (id),
                digest text NOT NULL,
                fetches bigint NOT NULL DEFAULT 0,
                checks bigint NOT NULL DEFAULT 0,
                pull_count bigint NOT NULL DEFAULT 0,
                pull_count_error bigint NOT NULL DEFAULT 0,
                last_pulled_at timestamptz,
                last_pulled_exact boolean NOT NULL DEFAULT true,
                pushed_at timestamptz,
                deleted_at timestamptz,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (repository_id, digest)
            );
            CREATE INDEX manifest_stats_by_repository_last_pulled ON manifest_stats (repository_id, last_pulled_at);
            CREATE INDEX manifest_stats_by_last_pulled ON manifest_stats (last_pulled_at);
            CREATE INDEX manifest_stats_by_repository_pull_count ON manifest_stats (repository_id, pull_count);
            CREATE TABLE catalog_tags (
                repository_id bigint NOT NULL REFERENCES repositories (id),
                tag text NOT NULL,
                digest text,
                pushed_at timestamptz,
                deleted_at timestamptz,
                PRIMARY KEY (repository_id, tag)
            );
            CREATE TABLE catalog_manifests (
                repository_id bigint NOT NULL REFERENCES repositories (id),
                digest text NOT NULL,
                pushed_at timestamptz,
                deleted_at timestamptz,
                PRIMARY KEY (repository_id, digest)
            );
            CREATE TABLE reconciled_batches (
                shard integer NOT NULL,
                batch bigint NOT NULL,
                pulls bigint NOT NULL,
                tail_mass bigint NOT NULL,
                epsilon double precision NOT NULL,
                delta double precision NOT NULL,
                reconciled_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (shard, batch)
            );
            """),
        Migration(version: 2, name: "last used beside last pulled", sql: """
            ALTER TABLE tag_stats ADD COLUMN last_used_at timestamptz, ADD COLUMN last_used_exact boolean NOT NULL DEFAULT true,
                ADD COLUMN counters_exact boolean NOT NULL DEFAULT true;
            ALTER TABLE manifest_stats ADD COLUMN last_used_at timestamptz, ADD COLUMN last_used_exact boolean NOT NULL DEFAULT true,
                ADD COLUMN counters_exact boolean NOT NULL DEFAULT true;
            UPDATE tag_stats SET last_used_at = last_pulled_at, last_used_exact = last_pulled_exact,
                counters_exact = pull_count_error = 0;
            UPDATE manifest_stats SET last_used_at = last_pulled_at, last_used_exact = last_pulled_exact,
                counters_exact = pull_count_error = 0;
            CREATE INDEX tag_stats_by_repository_last_used ON tag_stats (repository_id, last_used_at);
            CREATE INDEX manifest_stats_by_repository_last_used ON manifest_stats (repository_id, last_used_at);
            """),
        Migration(version: 3, name: "names of Quay repositories", sql: """
            CREATE TABLE quay_repository_names (
                quay_repository_id bigint NOT NULL,
                name text NOT NULL,
                seen_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (quay_repository_id, name)
            );
            CREATE INDEX quay_repository_names_by_name ON quay_repository_names (name);
            """),
        Migration(version: 4, name: "reconciled node windows and quarantined batches", sql: """
            CREATE TABLE reconciled_windows (
                shard integer NOT NULL,
                node text NOT NULL,
                sequence bigint NOT NULL,
                reconciled_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (shard, node)
            );
            CREATE TABLE quarantined_batches (
                shard integer NOT NULL,
                batch bigint NOT NULL,
                reason text NOT NULL,
                content jsonb NOT NULL,
                quarantined_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (shard, batch)
            );
            """),
        Migration(version: 5, name: "unattributed pulls", sql: """
            CREATE TABLE unattributed_pulls (
                repository_id bigint REFERENCES repositories (id),
                pulls bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE NULLS NOT DISTINCT (repository_id)
            );
            """),
        Migration(version: 6, name: "platform manifests of image indexes", sql: """
            CREATE TABLE manifest_children (
                repository_id bigint NOT NULL REFERENCES repositories (id),
                index_digest text NOT NULL,
                child_digest text NOT NULL,
                platform text,
                PRIMARY KEY (repository_id, index_digest, child_digest)
            );
            CREATE INDEX manifest_children_by_child ON manifest_children (repository_id, child_digest);
            """),
        // Every batch raises counts and times of the same hot rows. No index may cover a column a
        // batch changes, or no update is HOT (docs/performance.md): no read used these eight.
        // `current_digest` changes only when a tag moves, and serves "the last tag pulled" of a
        // manifest. Free space on each page keeps the new version on its page. The writer adds
        // catalog rows for new statistics rows only, so every statistics row gets one here.
        Migration(version: 7, name: "statistics updated in place", sql: """
            DROP INDEX tag_stats_by_repository_last_pulled, tag_stats_by_last_pulled, tag_stats_by_repository_pull_count,
                tag_stats_by_repository_last_used, manifest_stats_by_repository_last_pulled, manifest_stats_by_last_pulled,
                manifest_stats_by_repository_pull_count, manifest_stats_by_repository_last_used;
            CREATE INDEX tag_stats_by_current_digest ON tag_stats (repository_id, current_digest);
            ALTER TABLE tag_stats SET (fillfactor = 80);
            ALTER TABLE manifest_stats SET (fillfactor = 80);
            INSERT INTO catalog_tags (repository_id, tag, digest) SELECT repository_id, tag, current_digest FROM tag_stats
            ON CONFLICT DO NOTHING;
            INSERT INTO catalog_manifests (repository_id, digest) SELECT repository_id, digest FROM manifest_stats ON CONFLICT DO NOTHING;
            """),
        // A foreign key checks every inserted row against `repositories`: about 40 % of inserting a
        // new key (docs/decisions.md, thirty-first part). Every writer of the tables written per key
        // finds the repository's id by joining its name in the same statement, so the side worth
        // guarding is the rare one: a repository deleted (or its id changed, or the table emptied)
        // under its rows, which the trigger refuses as the foreign keys did.
        Migration(version: 8, name: "repositories guarded on delete instead of on every insert", sql: """
            DO $$
            DECLARE constraint_row record;
            BEGIN
                FOR constraint_row IN
                    SELECT conrelid::regclass AS relation, conname FROM pg_constraint
                    WHERE contype = 'f' AND confrelid = 'repositories'::regclass AND conparentid = 0
                        AND conrelid IN ('tag_stats'::regclass, 'manifest_stats'::regclass, 'catalog_tags'::regclass, 'catalog_manifests'::regclass)
                LOOP
                    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', constraint_row.relation, constraint_row.conname);
                END LOOP;
            END $$;
            CREATE FUNCTION pullsketch_refuse_orphans() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
            BEGIN
                IF TG_OP = 'TRUNCATE' THEN
                    IF EXISTS (SELECT FROM tag_stats) OR EXISTS (SELECT FROM manifest_stats)
                        OR EXISTS (SELECT FROM catalog_tags) OR EXISTS (SELECT FROM catalog_manifests) THEN
                        RAISE foreign_key_violation USING MESSAGE = 'repositories still have statistics or catalog rows';
                    END IF;
                    RETURN NULL;
                END IF;
                IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
                    RETURN NEW;
                END IF;
                IF EXISTS (SELECT FROM tag_stats WHERE repository_id = OLD.id) OR EXISTS (SELECT FROM manifest_stats WHERE repository_id = OLD.id)
                    OR EXISTS (SELECT FROM catalog_tags WHERE repository_id = OLD.id) OR EXISTS (SELECT FROM catalog_manifests WHERE repository_id = OLD.id) THEN
                    RAISE foreign_key_violation USING MESSAGE = format('repository %s still has statistics or catalog rows', OLD.name);
                END IF;
                RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
            END $$;
            CREATE TRIGGER repositories_keep_their_rows BEFORE DELETE OR UPDATE OF id ON repositories
                FOR EACH ROW EXECUTE FUNCTION pullsketch_refuse_orphans();
            CREATE TRIGGER repositories_keep_their_rows_on_truncate BEFORE TRUNCATE ON repositories
                FOR EACH STATEMENT EXECUTE FUNCTION pullsketch_refuse_orphans();
            """),
        // A repository's catalog rows lie one to a page when its tags were first seen among other
        // repositories' (as they are, until `CLUSTER`); its keys lie together in the primary key. With
        // every column the readers take from the catalog in the key, they read the catalog's share
        // from the key alone (index-only), not a page per tag (docs/decisions.md, thirty-second
        // part). Catalog rows are updated on pushes and deletions, never per pull.
        Migration(version: 9, name: "catalog read from its primary keys", sql: """
            ALTER TABLE catalog_tags DROP CONSTRAINT catalog_tags_pkey,
                ADD CONSTRAINT catalog_tags_pkey PRIMARY KEY (repository_id, tag) INCLUDE (digest, pushed_at, deleted_at);
            ALTER TABLE catalog_manifests DROP CONSTRAINT catalog_manifests_pkey,
                ADD CONSTRAINT catalog_manifests_pkey PRIMARY KEY (repository_id, digest) INCLUDE (pushed_at, deleted_at);
            """),
        // Names and digests are ASCII by their grammars, so byte order is their order, whatever the
        // database's locale: keys compared with `memcmp`, not `strcoll` (which PostgreSQL uses for
        // every locale but C and POSIX, `C.UTF-8` included), in every index descent, merge and sort,
        // and pages and cursors that order alike on every server (docs/decisions.md, forty-first
        // part). The tables are not rewritten; the indexes on these columns are rebuilt, and the
        // columns' statistics, which the change drops, are gathered again.
        Migration(version: 10, name: "names and digests in byte order", sql: """
            ALTER TABLE repositories ALTER COLUMN name TYPE text COLLATE "C";
            ALTER TABLE tag_stats ALTER COLUMN tag TYPE text COLLATE "C", ALTER COLUMN current_digest TYPE text COLLATE "C";
            ALTER TABLE manifest_stats ALTER COLUMN digest TYPE text COLLATE "C";
            ALTER TABLE catalog_tags ALTER COLUMN tag TYPE text COLLATE "C", ALTER COLUMN digest TYPE text COLLATE "C";
            ALTER TABLE catalog_manifests ALTER COLUMN digest TYPE text COLLATE "C";
            ALTER TABLE manifest_children ALTER COLUMN index_digest TYPE text COLLATE "C", ALTER COLUMN child_digest TYPE text COLLATE "C";
            ALTER TABLE quay_repository_names ALTER COLUMN name TYPE text COLLATE "C";
            ANALYZE repositories, tag_stats, manifest_stats, catalog_tags, catalog_manifests, manifest_children, quay_repository_names;
            """),
        // The dry run reads a tag's manifest from one table: every manifest with a push time has a
        // statistics row (zeros until it is pulled) carrying its catalog row's push and deletion
        // times, which the catalog's writers copy on every push (docs/decisions.md, "A manifest's
        // statistics row carries its push time"). The catalog's join cost a sixth to a quarter of
        // a dry run.
        Migration(version: 11, name: "manifests' push times beside their statistics", sql: """
            INSERT INTO manifest_stats AS s (repository_id, digest, pushed_at, deleted_at)
            SELECT repository_id, digest, pushed_at, deleted_at FROM catalog_manifests WHERE pushed_at IS NOT NULL
            ORDER BY repository_id, digest
            ON CONFLICT (repository_id, digest) DO UPDATE SET pushed_at = EXCLUDED.pushed_at, deleted_at = EXCLUDED.deleted_at
            WHERE s.pushed_at IS DISTINCT FROM EXCLUDED.pushed_at OR s.deleted_at IS DISTINCT FROM EXCLUDED.deleted_at;
            ANALYZE manifest_stats;
            """),
        // A deployment older than this version counts live pulls since its oldest ledger row at
        // the latest (the ledger keeps 30 days), and its imports until they run again.
        Migration(version: 12, name: "since when pulls are known", sql: """
            CREATE TABLE pull_knowledge (
                source text PRIMARY KEY,
                since timestamptz NOT NULL
            );
            INSERT INTO pull_knowledge (source, since) SELECT 'live', min(reconciled_at) FROM reconciled_batches HAVING count(*) > 0;
            """),
        // An import recorded before this version has no end: it is taken to reach live counting,
        // as it was, until it runs again.
        Migration(version: 13, name: "where imported history ends", sql: """
            ALTER TABLE pull_knowledge ADD COLUMN until timestamptz;
            """),
    ]

    /// The advisory lock that makes concurrent migrators wait for each other ("PSMI").
    private static let lockKey = "1347636553"

    /// Applies the migrations the database lacks, each in its own transaction, in version order,
    /// holding an advisory lock so two migrators never apply the same one. Returns the versions
    /// applied; none when the schema is current. When the connection's `search_path` names a schema
    /// that does not exist yet (`options=-csearch_path=pullsketch`, PullSketch inside another
    /// application's database), it is created first.
    @discardableResult
    public static func migrate(_ connection: PostgresConnection) throws -> [Int] {
        try connection.query("SELECT pg_advisory_lock($1::bigint)", [lockKey])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1::bigint)", [lockKey]) }
        try createSearchPathSchema(connection)
        try connection.query("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let applied = Set(try connection.query("SELECT version FROM schema_migrations").namedRows.map { try $0.decode("version", as: Int.self) })
        var newlyApplied: [Int] = []
        for migration in migrations where !applied.contains(migration.version) {
            try connection.transaction {
                try connection.execute(script: migration.sql)
                try connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    [String(migration.version), migration.name]
                )
            }
            newlyApplied.append(migration.version)
        }
        return newlyApplied
    }

    /// Throws `OutdatedSchema` when the database lacks migrations this build has (all of them
    /// before the first `pullsketch migrate`): the statements of this build would fail on it. A
    /// schema with migrations of a newer build passes, as a rolling upgrade needs.
    public static func requireCurrent(_ connection: PostgresConnection) throws {
        let tracked = try connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL").rows.first?.first == "t"
        let applied = tracked ? Set(try connection.query("SELECT version FROM schema_migrations").rows.compactMap { $0[0].flatMap { Int($0) } }) : []
        let missing = migrations.map(\.version).filter { !applied.contains($0) }
        guard missing.isEmpty else { throw OutdatedSchema(missing: missing, tracked: tracked) }
    }

    /// The partition counts `partitionStatistics` accepts.
    public static let partitionCounts = 2...1_024

    /// Turns `tag_stats` and `manifest_stats` into `partitions` hash partitions by repository
    /// (`<table>_p0`, …), keeping every row, key, index and page fill. One transaction holding
    /// each table's exclusive lock while its rows are copied: run it with the reconcilers stopped
    /// (docs/operations.md). Returns false, changing nothing, when they are partitioned already.
    @discardableResult
    public static func partitionStatistics(_ connection: PostgresConnection, partitions: Int) throws -> Bool {
        precondition(partitionCounts.contains(partitions), "partitions must be in \(partitionCounts)")
        try connection.query("SELECT pg_advisory_lock($1::bigint)", [lockKey])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1::bigint)", [lockKey]) }
        let partitioned = try connection.query(
            "SELECT count(*) AS n FROM pg_partitioned_table WHERE partrelid IN ('tag_stats'::regclass, 'manifest_stats'::regclass)"
        ).namedRows[0].decode("n", as: Int.self)
        guard partitioned == 0 else { return false }
        try connection.transaction {
            for (table, key, indexes) in [
                ("tag_stats", "repository_id, tag", "CREATE INDEX tag_stats_by_current_digest ON tag_stats (repository_id, current_digest);"),
                ("manifest_stats", "repository_id, digest", ""),
            ] {
                let parts = (0..<partitions).map { part in
                    """
                    CREATE TABLE \(table)_p\(part) PARTITION OF \(table)
                        FOR VALUES WITH (MODULUS \(partitions), REMAINDER \(part)) WITH (fillfactor = 80);
                    """
                }
                try connection.execute(script: """
                    ALTER TABLE \(table) RENAME TO \(table)_unpartitioned;
                    CREATE TABLE \(table) (LIKE \(table)_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
                        PARTITION BY HASH (repository_id);
                    \(parts.joined(separator: "\n"))
                    INSERT INTO \(table) SELECT * FROM \(table)_unpartitioned;
                    DROP TABLE \(table)_unpartitioned;
                    ALTER TABLE \(table) ADD PRIMARY KEY (\(key));
                    \(indexes)
                    """)
            }
        }
        return true
    }

    /// Creates the first schema of the `search_path` when no schema on it exists.
    private static func createSearchPathSchema(_ connection: PostgresConnection) throws {
        let row = try connection.query(
            "SELECT current_schema() AS current, current_setting('search_path') AS path"
        ).namedRows[0]
        guard try row.decode("current", as: String?.self) == nil else { return }
        let path = try row.decode("path", as: String.self)
        guard let first = path.split(separator: ",").first.map({ String($0.filter { $0 != " " }) }), !first.contains("$user") else { return }
        let name = first.hasPrefix("\"") && first.hasSuffix("\"") && first.count >= 2 ? String(first.dropFirst().dropLast()) : first
        let statement = try connection.query("SELECT format('CREATE SCHEMA IF NOT EXISTS %I', $1::text) AS sql", [name]).namedRows[0]
        try connection.execute(script: try statement.decode("sql", as: String.self))
    }
}

/// The database lacks migrations this build has.
public struct OutdatedSchema: Error, CustomStringConvertible {
    /// The versions missing.
    public let missing: [Int]
    /// Whether the database has PullSketch's schema at all.
    let tracked: Bool

    public var description: String {
        let versions = "migration\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", "))"
        return "\(tracked ? "the database schema lacks \(versions)" : "the database has no PullSketch schema"): run `pullsketch migrate` with this build"
    }
}
