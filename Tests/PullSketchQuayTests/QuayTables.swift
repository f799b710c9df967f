/// Quay's tables as its migrations create them (the columns PullSketch reads and writes), with
/// namespaces `acme` and `team` and four repositories.
enum QuayTables {
    static let schema = """
        CREATE TABLE "user" (id serial PRIMARY KEY, username varchar(255) NOT NULL UNIQUE);
        CREATE TABLE repository (id serial PRIMARY KEY, namespace_user_id integer NOT NULL REFERENCES "user" (id),
            name varchar(255) NOT NULL, UNIQUE (namespace_user_id, name));
        CREATE TABLE tagpullstatistics (id serial PRIMARY KEY, repository_id integer NOT NULL REFERENCES repository (id),
            tag_name varchar(255) NOT NULL, tag_pull_count bigint NOT NULL DEFAULT 0, last_tag_pull_date timestamp NOT NULL,
            current_manifest_digest varchar(255) NULL, UNIQUE (repository_id, tag_name));
        CREATE TABLE manifestpullstatistics (id serial PRIMARY KEY, repository_id integer NOT NULL REFERENCES repository (id),
            manifest_digest varchar(255) NOT NULL, manifest_pull_count bigint NOT NULL DEFAULT 0,
            last_manifest_pull_date timestamp NOT NULL, UNIQUE (repository_id, manifest_digest));
        INSERT INTO "user" (id, username) VALUES (1, 'acme'), (2, 'team');
        INSERT INTO repository (id, namespace_user_id, name) VALUES (10, 1, 'web'), (11, 2, 'api/server'), (12, 2, 'legacy'), (13, 2, 'app');
        """
}
