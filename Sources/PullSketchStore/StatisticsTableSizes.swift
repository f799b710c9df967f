public import PullSketchCore
public import PullSketchPostgres

/// The statistics tables' rows as PostgreSQL's planner counts them, whether they are partitioned,
/// and how many keys one statement that finds keys in them takes. With the default page costs, a
/// statement naming more than about 1 % of a table's rows is planned as a read of the whole table
/// (a hash join) instead of a lookup per key: three times slower on a table of 1–3 M rows held in memory
/// (docs/decisions.md, issue 22's thirty-seventh part). So on a table of at least
/// `smallestSplitTable` rows and 8 times the keys, statements take 1/256 of its rows at most, well
/// below that line, and the planner's own costs pick the key; a smaller table, or more keys than
/// that, get one statement, as reading the table whole is as fast there.
///
/// One per batch, shared by its statements: the rows are read at most once, when a statement's
/// keys could be split at all or the writer asks whether a table is partitioned.
public final class StatisticsTableSizes {
    /// The smallest statistics table whose statements are split.
    public static let smallestSplitTable = 256_000
    private let connection: PostgresConnection?
    /// Per kind; nil until read.
    private(set) var rows: [KeyKind: Int]?
    /// The kinds whose table is partitioned; nil until read.
    private var partitioned: Set<KeyKind>?

    /// Sizes read from `connection` when first needed.
    public init(_ connection: PostgresConnection) {
        self.connection = connection
    }

    /// Sizes as given.
    init(rows: [KeyKind: Int]) {
        connection = nil
        self.rows = rows
        partitioned = []
    }

    /// Whether the statistics table of `kind` is split into partitions.
    public func isPartitioned(_ kind: KeyKind) throws -> Bool {
        if partitioned == nil { try read() }
        return partitioned?.contains(kind) ?? false
    }

    /// How many of `keys` keys one statement takes, in a table of `tableRows` rows.
    public static func keysPerStatement(keys: Int, tableRows: Int) -> Int {
        tableRows >= smallestSplitTable && tableRows >= 8 * keys ? min(keys, tableRows / 256) : keys
    }

    /// The statements' shares of `count` keys of `kind`, in order.
    public func statementRanges(_ count: Int, of kind: KeyKind) throws -> [Range<Int>] {
        guard count > Self.smallestSplitTable / 256 else { return count == 0 ? [] : [0..<count] }
        if rows == nil { try read() }
        let size = Self.keysPerStatement(keys: count, tableRows: rows?[kind] ?? 0)
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }

    /// Reads `pg_class.reltuples` of `tag_stats` and `manifest_stats` (over its partitions, when
    /// partitioned; a table never counted has 0) and which of them are partitioned.
    private func read() throws {
        guard let connection else { return }
        let counts = try connection.query(
            """
            SELECT t.name, CASE WHEN c.relkind = 'p'
                THEN (SELECT sum(greatest(l.reltuples, 0)) FROM pg_partition_tree(c.oid) AS p JOIN pg_class l ON l.oid = p.relid WHERE p.isleaf)
                ELSE greatest(c.reltuples, 0) END::bigint, c.relkind = 'p'
            FROM unnest(ARRAY['tag_stats', 'manifest_stats']) AS t(name) JOIN pg_class c ON c.oid = t.name::regclass
            """
        )
        var rows: [KeyKind: Int] = [:]
        var partitioned: Set<KeyKind> = []
        for row in counts.rows {
            let kind: KeyKind = row[0] == "tag_stats" ? .tag : .manifest
            rows[kind] = Int(row[1] ?? "") ?? 0
            if row[2] == "t" { partitioned.insert(kind) }
        }
        self.rows = rows
        self.partitioned = partitioned
    }
}
