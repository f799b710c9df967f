import Foundation
import PullSketchTestSupport
import Testing

/// Signatures as cosign stores them on a registry without the referrers API: skopeo pushes two
/// images and, for each, a `sha256-<digest>.sig` tag; one image is pulled, the other is idle.
extension EndToEndTests {
    @Test func aSignatureTagIsAPruneCandidateOnlyWithTheImageItSigns() async throws {
        let stack = try Stack()
        try stack.push("signed-app", to: "team/signed:v1")
        try stack.push("old-app", to: "team/signed:old")
        let used = try stack.registry.digest(repository: "team/signed", tag: "v1")
        let idle = try stack.registry.digest(repository: "team/signed", tag: "old")
        func signature(of digest: String) -> String { digest.replacingOccurrences(of: "sha256:", with: "sha256-") + ".sig" }
        try stack.push("signature-of-v1", to: "team/signed:\(signature(of: used))")
        try stack.push("signature-of-old", to: "team/signed:\(signature(of: idle))")
        try stack.pull("team/signed:v1")
        try await eventually(within: 60) {
            let page = try stack.api("team/signed/pull_statistics?limit=10")
            let tags = page["tags"] as? [[String: Any]] ?? []
            return tags.count == 4 && tags.contains { $0["tag_name"] as? String == "v1" && $0["tag_pull_count"] as? Int == 1 }
        }

        // Everything pushed 100 days ago; only v1 (and its manifest) was used since.
        try stack.sql("""
            UPDATE catalog_tags SET pushed_at = now() - interval '100 days';
            UPDATE catalog_manifests SET pushed_at = now() - interval '100 days';
            UPDATE manifest_stats SET pushed_at = now() - interval '100 days' WHERE pushed_at IS NOT NULL;
            """)
        let candidates = try stack.api("team/signed/prune_candidates?not_pulled_days=30")["candidates"] as? [[String: Any]] ?? []
        let listed = Dictionary(uniqueKeysWithValues: candidates.map { ($0["tag_name"] as? String ?? "", $0["reasons"] as? [String] ?? []) })
        #expect(Set(listed.keys) == ["old", signature(of: idle)], "v1's signature stays while v1 is used")
        #expect(listed[signature(of: idle)]?.contains("names manifest \(idle), which is not kept either") == true)
    }
}
