/// Quay's tag-history tables as its migrations create them (the columns PullSketch reads): users
/// (namespaces), repositories, manifests, the platform manifests of image indexes
/// (`manifestchild`) and one `tag` row per version of a tag. `manifest_bytes` is nullable here, so
/// tests about tags need not write manifests.
public enum QuayTagTables {
    public static let schema = """
        CREATE TABLE "user" (id serial PRIMARY KEY, username varchar(255) NOT NULL UNIQUE);
        CREATE TABLE repository (id serial PRIMARY KEY, namespace_user_id integer NOT NULL REFERENCES "user" (id),
            name varchar(255) NOT NULL, UNIQUE (namespace_user_id, name));
        CREATE TABLE manifest (id serial PRIMARY KEY, repository_id integer NOT NULL REFERENCES repository (id),
            digest varchar(255) NOT NULL, manifest_bytes text, UNIQUE (repository_id, digest));
        CREATE TABLE manifestchild (id serial PRIMARY KEY, repository_id integer NOT NULL REFERENCES repository (id),
            manifest_id integer NOT NULL REFERENCES manifest (id), child_manifest_id integer NOT NULL REFERENCES manifest (id));
        CREATE TABLE tag (id serial PRIMARY KEY, name varchar(255) NOT NULL, repository_id integer NOT NULL REFERENCES repository (id),
            manifest_id integer REFERENCES manifest (id), lifetime_start_ms bigint NOT NULL, lifetime_end_ms bigint,
            hidden boolean NOT NULL DEFAULT false);
        """
}
