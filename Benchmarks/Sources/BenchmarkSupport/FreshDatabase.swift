public import PullSketchPostgres

/// A new, empty database on a benchmark's PostgreSQL server, dropped first if a run left one.
public func freshDatabase(_ server: String, _ name: String) throws -> PostgresConnection {
    let admin = try PostgresConnection(server + " dbname=postgres")
    _ = try admin.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    _ = try admin.query("CREATE DATABASE \(name)")
    return try PostgresConnection(server + " dbname=\(name)")
}
