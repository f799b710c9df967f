/// SQL that makes PullSketch's statistics tables large: `rows` rows of a repository of their own,
/// `bulk/filler`, in each of `tag_stats` and `manifest_stats`, counted by `ANALYZE` as the planner
/// sees them. Large enough (from 256,000 rows) that statements finding a batch's keys in them are
/// split.
public enum LargeStatisticsTables {
    public static func script(rows: Int) -> String {
        """
        INSERT INTO repositories (name) VALUES ('bulk/filler');
        INSERT INTO tag_stats (repository_id, tag)
            SELECT r.id, 'f' || g FROM repositories r, generate_series(1, \(rows)) g WHERE r.name = 'bulk/filler';
        INSERT INTO manifest_stats (repository_id, digest)
            SELECT r.id, 'sha256:' || md5(g::text) || md5(g::text) FROM repositories r, generate_series(1, \(rows)) g WHERE r.name = 'bulk/filler';
        ANALYZE tag_stats, manifest_stats;
        """
    }
}
