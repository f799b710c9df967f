public import PullSketchCore
public import PullSketchPostgres
public import PullSketchStore

/// PullSketch's statistics as rows of Quay's own tables, `tagpullstatistics` and
/// `manifestpullstatistics`, so Quay's API and UI show them. A row belongs to a Quay repository id
/// and sums the key's statistics under every name that id has had (`quay_repository_names`, kept
/// by the node), so a rename loses nothing: its total pulls (an estimated key's upper bound, so a
/// count errs only upwards and never makes an image look unused), its last pull time as Quay
/// stores it, naive UTC, never moved back, and for a tag the manifest it last served. A key never
/// pulled has no row (Quay's date column is NOT NULL); a repository Quay no longer has gets none.
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

    /// Writes each key's totals to Quay's table of its kind: in parts on a large statistics table,
    /// whose keys one statement would otherwise find by reading it whole (`sizes`).
    public func project(_ keys: [PullKey], statistics: PostgresConnection, sizes: StatisticsTableSizes) throws {
        let keys = Set(keys)  // a key can be both exact and estimated in one batch
        for kind in KeyKind.allCases {
            let ofKind = Array(keys.filter { $0.kind == kind })
            for part in try sizes.statementRanges(ofKind.count, of: kind) {
                let keys = ofKind[part]
                let totals = try statistics.query(
                    Self.totals(kind, of: """
                        SELECT DISTINCT m.quay_repository_id, k.reference
                        FROM unnest($1::text[], $2::text[]) AS k(repository, reference)
                        JOIN quay_repository_names m ON m.name = k.repository
                        """),
                    [PostgresArray.literal(keys.map(\.repository.value)), PostgresArray.literal(keys.map(\.name))]
                )
                try write(kind, totals, to: quay ?? statistics)
            }
        }
    }

    /// Rewrites every row of the projection from the statistics (Quay's garbage collection deletes
    /// rows; the statistics keep them). Returns the rows written per kind.
    public func sync(statistics: PostgresConnection) throws -> [KeyKind: Int] {
        var written: [KeyKind: Int] = [:]
        for kind in KeyKind.allCases {
            var after = ("0", "")
            while true {
                let totals = try statistics.query(
                    Self.totals(kind, of: """
                        SELECT DISTINCT m.quay_repository_id, s.\(Self.column(kind)) AS reference
                        FROM quay_repository_names m JOIN repositories r ON r.name = m.name
                        JOIN \(Self.table(kind)) s ON s.repository_id = r.id
                        WHERE s.last_pulled_at IS NOT NULL AND (m.quay_repository_id, s.\(Self.column(kind))) > ($1::bigint, $2)
                        ORDER BY 1, 2 LIMIT $3
                        """),
                    [after.0, after.1, String(Self.pageSize)]
                )
                guard let last = totals.namedRows.last else { break }
                written[kind, default: 0] += try write(kind, totals, to: quay ?? statistics)
                after = (try last.decode("quay_repository_id", as: String.self), try last.decode("reference", as: String.self))
            }
        }
        return written
    }

    /// Each key of `keys` (a query of `quay_repository_id`, `reference`) with its statistics summed
    /// over every name of the Quay repository: `pulls`, `pulled_ms` and, for tags, `digest`.
    private static func totals(_ kind: KeyKind, of keys: String) -> String {
        """
        WITH keys AS (\(keys))
        SELECT k.quay_repository_id, k.reference, sum(s.pull_count + s.pull_count_error) AS pulls,
            (extract(epoch FROM max(s.last_pulled_at)) * 1000)::bigint AS pulled_ms\(kind == .tag
                ? ", (array_agg(s.current_digest ORDER BY s.current_digest_at DESC NULLS LAST))[1] AS digest" : "")
        FROM keys k
        JOIN quay_repository_names m ON m.quay_repository_id = k.quay_repository_id
        JOIN repositories r ON r.name = m.name
        JOIN \(table(kind)) s ON s.repository_id = r.id AND s.\(column(kind)) = k.reference
        WHERE s.last_pulled_at IS NOT NULL
        GROUP BY k.quay_repository_id, k.reference
        ORDER BY k.quay_repository_id, k.reference
        """
    }

    /// Upserts `totals` into Quay's table of `kind`; returns the rows written (those of
    /// repositories Quay still has).
    @discardableResult
    private func write(_ kind: KeyKind, _ totals: PostgresRows, to connection: PostgresConnection) throws -> Int {
        let rows = totals.namedRows
        guard !rows.isEmpty else { return 0 }
        func column(_ name: String) throws -> String {
            PostgresArray.literal(try rows.map { try $0.decode(name, as: String?.self) })
        }
        let input = """
            FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]\(kind == .tag ? ", $5::text[]" : ""))
                AS u(quay_repository_id, reference, pulls, pulled_ms\(kind == .tag ? ", digest" : ""))
            WHERE EXISTS (SELECT 1 FROM public.repository q WHERE q.id = u.quay_repository_id)
            """
        let sql = switch kind {
        case .tag:
            """
            INSERT INTO public.tagpullstatistics AS t (repository_id, tag_name, tag_pull_count, last_tag_pull_date, current_manifest_digest)
            SELECT u.quay_repository_id, u.reference, u.pulls, \(PostgresTime.timestamp(milliseconds: "u.pulled_ms")) AT TIME ZONE 'UTC', u.digest
            \(input)
            ON CONFLICT (repository_id, tag_name) DO UPDATE SET
                tag_pull_count = EXCLUDED.tag_pull_count,
                last_tag_pull_date = GREATEST(t.last_tag_pull_date, EXCLUDED.last_tag_pull_date),
                current_manifest_digest = COALESCE(EXCLUDED.current_manifest_digest, t.current_manifest_digest)
            """
        case .manifest:
            """
            INSERT INTO public.manifestpullstatistics AS m (repository_id, manifest_digest, manifest_pull_count, last_manifest_pull_date)
            SELECT u.quay_repository_id, u.reference, u.pulls, \(PostgresTime.timestamp(milliseconds: "u.pulled_ms")) AT TIME ZONE 'UTC'
            \(input)
            ON CONFLICT (repository_id, manifest_digest) DO UPDATE SET
                manifest_pull_count = EXCLUDED.manifest_pull_count,
                last_manifest_pull_date = GREATEST(m.last_manifest_pull_date, EXCLUDED.last_manifest_pull_date)
            """
        }
        var parameters = [try column("quay_repository_id"), try column("reference"), try column("pulls"), try column("pulled_ms")]
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
