import Foundation
import Hummingbird
import PullSketchCore
import PullSketchPostgres
import PullSketchStore

/// The statistics API under `/api/v1/repository/<repository>/`:
/// `tag/<tag>/pull_statistics`, `manifest/<digest>/pull_statistics`, `pull_statistics` (a sorted
/// page of every tag and manifest), `pull_statistics.csv` (every tag) and `prune_candidates`. A repository name may have any number of
/// components; a path ending in `tag/<x>/pull_statistics` or `manifest/<x>/pull_statistics` is
/// read as a tag or manifest route.
extension PullSketchNode {
    /// Who is reading: everything (`read_auth: none`) or what one token may read.
    enum Reader {
        case everything
        case token(ReaderToken)

        func mayRead(_ repository: RepositoryName) -> Bool {
            switch self {
            case .everything: true
            case .token(let token): token.mayRead(repository.value)
            }
        }

        /// The patterns of the repositories it may read; nil for everything.
        var repositoryPatterns: [String]? {
            switch self {
            case .everything: nil
            case .token(let token): token.repositories
            }
        }
    }

    /// The reader a request authenticates as, by `Authorization: Bearer` or the UI's cookie.
    func reader(_ request: Request) -> Reader? {
        guard case .tokens(let tokens) = configuration.readAuth else { return .everything }
        guard let presented = bearerToken(request.headers) ?? request.cookies["pullsketch_token"]?.value else { return nil }
        return tokens.first { constantTimeEqual($0.token, presented) }.map(Reader.token)
    }

    func readStatistics(_ request: Request, context: NodeRequestContext) async throws -> Response {
        guard statisticsEnabled else { return JSONResponse.error(.notFound, "pull statistics are not enabled") }
        guard let reader = reader(request) else { return JSONResponse.error(.unauthorized, "missing or unknown bearer token") }
        let segments = context.parameters.getCatchAll().map(String.init)
        guard let route = StatisticsRoute(segments) else { return JSONResponse.error(.notFound, "no such route") }
        let repositoryText = route.repository
        guard let repository = try? RepositoryName(repositoryText) else {
            return JSONResponse.error(.badRequest, "invalid repository name '\(repositoryText)'")
        }
        // 404, not 403: a reader must not learn that a repository outside its scope exists.
        guard reader.mayRead(repository) else { return JSONResponse.error(.notFound, "no such repository") }
        switch route {
        case .tag(_, let text):
            guard let tag = try? TagName(text) else { return JSONResponse.error(.badRequest, "invalid tag '\(text)'") }
            let statistics = try await database.run { try StatisticsQueries(connection: $0).tag(repository, tag) }
            return try JSONResponse.make(.ok, TagStatisticsBody(statistics ?? .neverPulled(tag.value)))
        case .manifest(_, let text):
            guard let digest = try? Digest(text) else { return JSONResponse.error(.badRequest, "invalid digest '\(text)'") }
            let (listing, tags, platforms) = try await database.run {
                let queries = StatisticsQueries(connection: $0)
                return (
                    try queries.manifestListing(repository, digest), try queries.tags(repository, pointingAt: digest),
                    try queries.platforms(repository, index: digest)
                )
            }
            let known = listing ?? ManifestListing(statistics: .neverPulled(digest.value), tags: [], lastTagPulled: nil, pushedAt: nil)
            return try JSONResponse.make(.ok, ManifestStatisticsBody(known, currentTags: tags, platforms: platforms))
        case .repository:
            do {
                let page = try TagPage(request.uri.queryParameters)
                let (rows, manifests, unattributed) = try await database.run {
                    let queries = StatisticsQueries(connection: $0)
                    return (
                        try queries.tags(repository, order: page.order, descending: page.descending, limit: page.limit + 1, offset: page.offset),
                        try queries.manifests(repository, order: page.order, descending: page.descending, limit: page.limit + 1, offset: page.offset),
                        try queries.unattributedPulls(repository)
                    )
                }
                return try JSONResponse.make(
                    .ok,
                    RepositoryStatisticsBody(repository: repository.value, page: page, rows: rows, manifests: manifests, unattributedPulls: unattributed)
                )
            } catch let error as InvalidParameter {
                return JSONResponse.error(.badRequest, error.message)
            }
        case .export:
            return exportCSV(repository)
        case .pruneCandidates:
            do {
                let policy = try PrunePolicy(request.uri.queryParameters)
                let (tags, manifests, knownSince, latestQuarantine, now) = try await database.run {
                    let queries = StatisticsQueries(connection: $0)
                    let knowledge = PullKnowledge(connection: $0)
                    let now = clock.now()
                    return (
                        try queries.pruneCandidates(repository, policy: policy, now: now),
                        try queries.manifestPruneCandidates(repository, policy: policy, now: now),
                        try knowledge.since(), try knowledge.latestQuarantine(), now
                    )
                }
                return try JSONResponse.make(
                    .ok,
                    PruneCandidatesBody(
                        repository: repository.value, knownSince: knownSince, latestQuarantine: latestQuarantine,
                        historyComplete: policy.isJudgedOnKnownPulls(knownSince: knownSince, latestQuarantine: latestQuarantine, now: now),
                        candidates: tags, manifests: manifests
                    )
                )
            } catch let error as InvalidParameter {
                return JSONResponse.error(.badRequest, error.message)
            } catch let error as PostgresError where error.sqlState == "2201B" {
                return JSONResponse.error(.badRequest, "invalid tag pattern: \(error.message)")
            }
        }
    }
}

/// The statistics routes, parsed from the path after `/api/v1/repository/`.
enum StatisticsRoute {
    case tag(repository: String, tag: String)
    case manifest(repository: String, digest: String)
    case repository(String)
    case export(String)
    case pruneCandidates(String)

    init?(_ segments: [String]) {
        guard let last = segments.last, segments.count >= 2 else { return nil }
        let count = segments.count
        if last == "pull_statistics", count >= 4, segments[count - 3] == "tag" {
            self = .tag(repository: segments[..<(count - 3)].joined(separator: "/"), tag: segments[count - 2])
        } else if last == "pull_statistics", count >= 4, segments[count - 3] == "manifest" {
            self = .manifest(repository: segments[..<(count - 3)].joined(separator: "/"), digest: segments[count - 2])
        } else if last == "pull_statistics" {
            self = .repository(segments.dropLast().joined(separator: "/"))
        } else if last == "pull_statistics.csv" {
            self = .export(segments.dropLast().joined(separator: "/"))
        } else if last == "prune_candidates" {
            self = .pruneCandidates(segments.dropLast().joined(separator: "/"))
        } else {
            return nil
        }
    }

    var repository: String {
        switch self {
        case .tag(let repository, _), .manifest(let repository, _), .repository(let repository), .export(let repository),
            .pruneCandidates(let repository):
            repository
        }
    }
}
