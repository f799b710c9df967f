public import PullSketchCore
public import PullSketchPostgres
public import PullSketchStore

/// PullSketch's statistics as rows of Quay's own tables, `tagpullstatistics` and
/// `manifestpullstatistics`, so Quay's API and UI show them. Each row holds the key's total pulls
/// (an estimated key's upper bound: a count that errs only upwards never makes an image look
/// unused) and its last pull time as Quay stores it, naive UTC; a time never moves back. A key
/// never pulled has no row (Quay's date column is NOT NULL). Rows are matched to Quay's
/// repositories by name (`"user".username` / `repository.name`); a repository Quay does not have
/// gets none.
///
/// Rows are written whole, not incremented, so writing one twice changes nothing: inside the
/// batch's transaction when Quay's tables are in the statistics database (exactly once with the
/// ledger), else on Quay's own connection just before the batch commits (a failure rolls the batch
/// back; its retry writes the same rows).
public final class QuayProjection: StatisticsProjection {
    /// Rows read and written per statement by `sync`.
    static let pageSize = 5_000
    /// Quay's database when it is not the statistics database.
    private let quay: PostgresConnection?

    /// `quayDatabase`: a libpq connection string of Quay's database, or nil when Quay's tables are
    /// reachable from the statistics connection (PullSketch's schema inside Quay's database).
    public init(quayDatabase: String?) throws {
        quay = try quayDatabase.map { try PostgresConnection($0) }
    }

    public func project(_ keys: [PullKey], statistics: PostgresConnection) throws {
        let keys = Set(keys)  // a key can be both exact and estimated in one batch
        for kind in KeyKind.allCases {
            let ofKind = keys.filter { $0.kind == kind }
            guard !ofKind.isEmpty else { continue }
            let rows = try statistics.query(
                """
                SELECT r.name AS repository, s.\(Self.column(kind)) AS reference, s.pull_count + s.pull_count_error AS pulls,
                    (extract(epoch FROM s.last_pulled_at) * 1000)::bigint AS pulled_ms\(kind == .tag ? ", s.current_digest AS digest" : "")
                FROM unnest($1::text[], $2::text[]) AS k(repository, reference)
                JOIN repositories r ON r.name = k.repository
                JOIN \(Self.table(kind)) s ON s.repository_id = r.id AND s.\(Self.column(kind)) = k.reference
                WHERE s.last_pulled_at IS NOT NULL
                """,
                [PostgresArray.literal(ofKind.map(\.repository.value)), PostgresArray.literal(ofKind.map(\.name))]
            )
            try write(kind, rows, to: quay ?? statistics)
        }
    }

    /// Rewrites every row of the projection from the statistics (Quay's garbage collection deletes
    /// rows; the statistics keep them). Returns the rows written per kind.
    public func sync(statistics: PostgresConnection) throws -> [KeyKind: Int] {
        var written: [KeyKind: Int] = [:]
        for kind in KeyKind.allCases {
            var after: (id: String, reference: String) = ("0", "")
            while true {
                let rows = try statistics.query(
                    """
                    SELECT s.repository_id, r.name AS repository, s.\(Self.column(kind)) AS reference,
                        s.pull_count + s.pull_count_error AS pulls,
                        (extract(epoch FROM s.last_pulled_at) * 1000)::bigint AS pulled_ms\(kind == .tag ? ", s.current_digest AS digest" : "")
                    FROM \(Self.table(kind)) s JOIN repositories r ON r.id = s.repository_id
                    WHERE s.last_pulled_at IS NOT NULL AND (s.repository_id, s.\(Self.column(kind))) > ($1::bigint, $2)
                    ORDER BY s.repository_id, s.\(Self.column(kind)) LIMIT $3
                    """,
                    [after.id, after.reference, String(Self.pageSize)]
                )
                guard let last = rows.namedRows.last else { break }
                written[kind, default: 0] += try write(kind, rows, to: quay ?? statistics)
                after = (try last.decode("repository_id", as: String.self), try last.decode("reference", as: String.self))
            }
        }
        return written
    }

    /// Upserts `rows` (repository, reference, pulls, pulled_ms[, digest]) into Quay's table of
    /// `kind`; returns the rows Quay has a repository for.
    @discardableResult
    private func write(_ kind: KeyKind, _ rows: PostgresRows, to connection: PostgresConnection) throws -> Int {
        let named = rows.namedRows
        guard !named.isEmpty else { return 0 }
        func column(_ name: String) throws -> String {
            PostgresArray.literal(try named.map { try $0.decode(name, as: String?.self) })
        }
        let unnest = """
            FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]\(kind == .tag ? ", $5::text[]" : ""))
                AS u(repository, reference, pulls, pulled_ms\(kind == .tag ? ", digest" : ""))
            JOIN public."user" n ON n.username = split_part(u.repository, '/', 1)
            JOIN public.repository q ON q.namespace_user_id = n.id AND q.name = substr(u.repository, length(n.username) + 2)
            ORDER BY q.id, u.reference
            """
        let sql = switch kind {
        case .tag:
            """
            INSERT INTO public.tagpullstatistics AS t (repository_id, tag_name, tag_pull_count, last_tag_pull_date, current_manifest_digest)
            SELECT q.id, u.reference, u.pulls, to_timestamp(u.pulled_ms / 1000.0) AT TIME ZONE 'UTC', u.digest
            \(unnest)
            ON CONFLICT (repository_id, tag_name) DO UPDATE SET
                tag_pull_count = EXCLUDED.tag_pull_count,
                last_tag_pull_date = GREATEST(t.last_tag_pull_date, EXCLUDED.last_tag_pull_date),
                current_manifest_digest = COALESCE(EXCLUDED.current_manifest_digest, t.current_manifest_digest)
            """
        case .manifest:
            """
            INSERT INTO public.manifestpullstatistics AS m (repository_id, manifest_digest, manifest_pull_count, last_manifest_pull_date)
            SELECT q.id, u.reference, u.pulls, to_timestamp(u.pulled_ms / 1000.0) AT TIME ZONE 'UTC'
            \(unnest)
            ON CONFLICT (repository_id, manifest_digest) DO UPDATE SET
                manifest_pull_count = EXCLUDED.manifest_pull_count,
                last_manifest_pull_date = GREATEST(m.last_manifest_pull_date, EXCLUDED.last_manifest_pull_date)
            """
        }
        var parameters = [try column("repository"), try column("reference"), try column("pulls"), try column("pulled_ms")]
        if kind == .tag { parameters.append(try column("digest")) }
        return try connection.query(sql, parameters).affected
    }

    private static func table(_ kind: KeyKind) -> String {
        kind == .tag ? "tag_stats" : "manifest_stats"
    }

    private static func column(_ kind: KeyKind) -> String {
        kind == .tag ? "tag" : "digest"
    }
}
