import PullSketchCore
import PullSketchPostgres

/// Tags that name another manifest of their repository, their *subject*, the way tools store
/// what belongs to an image on registries without OCI 1.1's referrers API: cosign's signatures,
/// attestations and SBOMs (`sha256-<hex>.sig`, `.att`, `.sbom`) and the OCI referrers tag schema's
/// index (`sha256-<hex>`, which notation and oras keep up to date). Nobody pulls them for
/// themselves, so their own pulls say nothing about whether they are needed: their subject does.
/// Only `sha256` is recognised: the schema cuts longer digests to 64 characters, and a name that
/// does not spell its subject whole is judged as any other tag.
enum ReferrerTag {
    /// The digest `tag` names, if it follows the scheme. A dry run asks this of each of its
    /// thousands of candidates, so a tag is looked at further only when it begins `sha256-`.
    static func subject(of tag: String) -> String? {
        let bytes = tag.utf8, prefix = "sha256-".utf8, hexLength = 64
        guard bytes.count >= prefix.count + hexLength, bytes.starts(with: prefix) else { return nil }
        let rest = bytes.dropFirst(prefix.count + hexLength)
        guard rest.isEmpty || (rest.count > 1 && rest.first == UInt8(ascii: ".")) else { return nil }
        return (try? Digest("sha256:" + String(decoding: bytes.dropFirst(prefix.count).prefix(hexLength), as: UTF8.self)))?.value
    }
}

extension StatisticsQueries {
    /// `candidates` without the referrer tags whose subject stays: a subject stays when a live tag
    /// that is no candidate points to it, when a live image index lists it, or when it does not
    /// meet `policy` by its own use, push time and pulls. A deleted or unknown subject is gone.
    /// Deleting a signature while its image is in use breaks every check of that signature, and a
    /// signature is rarely pulled: judged on its own pulls it would always look idle. A referrer
    /// tag kept may keep its own manifest's referrers in turn, so this repeats until nothing
    /// changes. Each referrer tag listed says which subject it follows.
    func withoutReferrersOfKeptSubjects(
        _ candidates: [PruneCandidate], repositoryID id: Int64, policy: PrunePolicy, now: Timestamp
    ) throws -> [PruneCandidate] {
        var subjects: [String: String] = [:]
        for candidate in candidates {
            if let subject = ReferrerTag.subject(of: candidate.tag) { subjects[candidate.tag] = subject }
        }
        guard !subjects.isEmpty else { return candidates }
        let digests = PostgresArray.literal(Array(Set(subjects.values)))
        var tagsPointingAt: [String: [String]] = [:]
        for row in try connection.query(
            """
            SELECT coalesce(c.digest, t.current_digest) AS digest, c.tag
            FROM catalog_tags c LEFT JOIN tag_stats t ON t.repository_id = \(Self.repositoryID) AND t.tag = c.tag
            WHERE c.repository_id = \(Self.repositoryID) AND c.deleted_at IS NULL AND coalesce(c.digest, t.current_digest) = ANY ($2::text[])
            """,
            [String(id), digests]
        ).namedRows {
            tagsPointingAt[try row.decode("digest"), default: []].append(try row.decode("tag"))
        }
        var parameters = [String(id), digests]
        let conditions = Self.manifestConditions(policy, now: now, used: "m.last_used_at", pushed: "m.pushed_at", pulls: "m.pull_count", &parameters)
        let keptOnTheirOwn = Set(
            try connection.query(
                """
                SELECT s.digest FROM unnest($2::text[]) s(digest)
                LEFT JOIN manifest_stats m ON m.repository_id = \(Self.repositoryID) AND m.digest = s.digest
                \(Self.platformUse(index: "s.digest"))
                WHERE NOT EXISTS (
                        SELECT 1 FROM catalog_manifests d
                        WHERE d.repository_id = \(Self.repositoryID) AND d.digest = s.digest AND d.deleted_at IS NOT NULL
                    )
                    AND (NOT (\((["true"] + conditions).joined(separator: " AND "))) OR EXISTS (
                        SELECT 1 FROM manifest_children x
                        JOIN catalog_manifests p ON p.repository_id = x.repository_id AND p.digest = x.index_digest AND p.deleted_at IS NULL
                        WHERE x.repository_id = \(Self.repositoryID) AND x.child_digest = s.digest
                    ))
                """,
                parameters
            ).namedRows.map { try $0.decode("digest") as String }
        )
        var listed = Set(candidates.map(\.tag))
        while true {
            let kept = subjects.filter { tag, subject in
                listed.contains(tag)
                    && (keptOnTheirOwn.contains(subject) || tagsPointingAt[subject, default: []].contains { !listed.contains($0) })
            }
            if kept.isEmpty { break }
            listed.subtract(kept.keys)
        }
        return candidates.compactMap { candidate in
            guard listed.contains(candidate.tag) else { return nil }
            guard let subject = subjects[candidate.tag] else { return candidate }
            var candidate = candidate
            candidate.reasons.append("names manifest \(subject), which is not kept either")
            return candidate
        }
    }
}
