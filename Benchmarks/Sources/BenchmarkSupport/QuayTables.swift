public import PullSketchPostgres

/// Quay's tables the baselines write, as upstream defines them (../shared/reference/quay.md
/// §2.4, §3.5): pull statistics keyed by repository id and name, and the audit log.
public enum QuayTables {
    public static let pullRepoKind = 1

    public static func create(_ connection: PostgresConnection, repositories: [String]) throws {
        try connection.execute(script: """
            CREATE TABLE repository (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
            CREATE TABLE tagpullstatistics (
                id bigserial PRIMARY KEY, repository_id integer NOT NULL REFERENCES repository (id),
                tag_name varchar(255) NOT NULL, tag_pull_count bigint NOT NULL, last_tag_pull_date timestamp NOT NULL,
                current_manifest_digest varchar(255), UNIQUE (repository_id, tag_name));
            CREATE TABLE manifestpullstatistics (
                id bigserial PRIMARY KEY, repository_id integer NOT NULL REFERENCES repository (id),
                manifest_digest varchar(255) NOT NULL, manifest_pull_count bigint NOT NULL,
                last_manifest_pull_date timestamp NOT NULL, UNIQUE (repository_id, manifest_digest));
            CREATE TABLE logentrykind (id serial PRIMARY KEY, name varchar(255) NOT NULL UNIQUE);
            INSERT INTO logentrykind (id, name) VALUES (\(pullRepoKind), 'pull_repo');
            CREATE TABLE logentry3 (
                id bigserial PRIMARY KEY, kind_id integer NOT NULL, account_id integer NOT NULL, performer_id integer,
                repository_id integer, datetime timestamp NOT NULL DEFAULT now(), ip varchar(255), metadata_json text NOT NULL DEFAULT '{}');
            CREATE INDEX logentry3_account_datetime ON logentry3 (account_id, datetime);
            CREATE INDEX logentry3_performer_datetime ON logentry3 (performer_id, datetime);
            CREATE INDEX logentry3_repository_datetime_kind ON logentry3 (repository_id, datetime, kind_id);
            """)
        _ = try connection.query("INSERT INTO repository (name) SELECT unnest($1::text[])", [PostgresArray.literal(repositories)])
    }

    /// Repository name → id.
    public static func repositoryIDs(_ connection: PostgresConnection) throws -> [String: Int] {
        var ids: [String: Int] = [:]
        for row in try connection.query("SELECT name, id FROM repository").rows { ids[row[0]!] = Int(row[1]!)! }
        return ids
    }
}
