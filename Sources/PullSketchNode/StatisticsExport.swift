import Hummingbird
import PullSketchCore
import PullSketchEvents
import PullSketchStore

extension PullSketchNode {
    /// `GET …/pull_statistics.csv`: every live tag of the repository with its manifest, by name,
    /// streamed a page of 1,000 tags at a time (names and digests hold no comma or quote).
    func exportCSV(_ repository: RepositoryName) -> Response {
        let database = self.database
        let header = "tag,current_manifest_digest,tag_pull_count,tag_pull_count_error,last_tag_pull_date,last_tag_used_date,"
            + "manifest_pull_count,manifest_pull_count_error,last_manifest_pull_date,last_manifest_used_date,pushed_at\n"
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: header))
            var last: String?
            while true {
                let after = last
                let page = try await database.run { try StatisticsQueries(connection: $0).tags(repository, after: after, limit: 1_000) }
                guard let final = page.last else { break }
                try await writer.write(ByteBuffer(string: page.map(Self.csvLine).joined()))
                last = final.tag
            }
            try await writer.finish(nil)
        }
        let file = repository.value.replacingOccurrences(of: "/", with: "_")
        return Response(
            status: .ok,
            headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(file)-pull-statistics.csv\""],
            body: body
        )
    }

    private static func csvLine(_ tag: TagStatistics) -> String {
        let manifest = tag.manifest
        let fields: [String] = [
            tag.tag, tag.currentDigest ?? "", String(tag.pullCount), String(tag.pullCountError), csvDate(tag.lastPulledAt), csvDate(tag.lastUsedAt),
            String(manifest?.pullCount ?? 0), String(manifest?.pullCountError ?? 0), csvDate(manifest?.lastPulledAt), csvDate(manifest?.lastUsedAt),
            csvDate(tag.pushedAt),
        ]
        return fields.joined(separator: ",") + "\n"
    }

    private static func csvDate(_ time: Timestamp?) -> String {
        time.map { RFC3339.format($0) } ?? ""
    }
}
