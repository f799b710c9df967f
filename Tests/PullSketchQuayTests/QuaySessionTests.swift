import PullSketchCore
import PullSketchQuay
import PullSketchRESP
import Testing

@Suite struct QuaySessionTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)
    static let tagKey = "pull_events:repo:42:tag:v1.2:\(digest)"
    static let digestKey = "pull_events:repo:42:digest:\(digest)"
    let received = Timestamp(millisecondsSinceEpoch: 1_800_000_000_500)

    func session(password: String? = nil) -> QuaySession {
        QuaySession(configuration: QuaySessionConfiguration(password: password, maximumDelay: .seconds(600)), scripts: ScriptDirectory())
    }

    func reply(_ session: inout QuaySession, _ words: String...) -> RESPReply {
        session.handle(words.map { Array($0.utf8) }).reply
    }

    func tag(_ seconds: Int64?) -> QuayPull {
        QuayPull(repositoryID: 42, reference: .tag(try! TagName("v1.2"), served: try! Digest(Self.digest)),
                 time: seconds.map { Timestamp(millisecondsSinceEpoch: $0 * 1_000) } ?? received)
    }

    @Test func answersTheConnectionCommandsOfEveryRedisPyRelease() {
        var session = session()
        #expect(reply(&session, "CLIENT", "SETINFO", "LIB-NAME", "redis-py") == .ok)
        #expect(reply(&session, "CLIENT", "SETINFO", "LIB-VER", "7.1.0") == .ok)
        #expect(reply(&session, "SELECT", "1") == .ok)
        #expect(reply(&session, "ping") == .simple("PONG"))
        #expect(reply(&session, "SCAN", "0", "MATCH", "pull_events:*", "COUNT", "100") == .array([.bulk("0"), .array([])]))
        #expect(reply(&session, "SELECT", "16") == .error("ERR DB index is out of range"))
        #expect(session.takePulls(receivedAt: received).isEmpty)
    }

    @Test func aPasswordIsRequiredBeforeAnythingElseAndCheckedAsRedisDoes() {
        var session = session(password: "s3cret")
        #expect(reply(&session, "PING") == .error("NOAUTH Authentication required."))
        #expect(reply(&session, "EVAL", "s", "1", Self.tagKey, "42", "v1.2", Self.digest, "1800000000", "tag") == .error("NOAUTH Authentication required."))
        #expect(reply(&session, "AUTH", "wrong") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(reply(&session, "AUTH", "someone", "s3cret") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(reply(&session, "AUTH", "default", "s3cret") == .ok)
        #expect(reply(&session, "PING") == .simple("PONG"))
        #expect(session.takePulls(receivedAt: received).isEmpty)
        var open = self.session()
        #expect(reply(&open, "AUTH", "x") == .error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"))
    }

    @Test func anACLUserIsNamedWithItsPassword() {
        var session = QuaySession(configuration: QuaySessionConfiguration(password: "s3cret", username: "quay"), scripts: ScriptDirectory())
        #expect(reply(&session, "AUTH", "s3cret") == .error("WRONGPASS invalid username-password pair or user is disabled."), "the default user")
        #expect(reply(&session, "AUTH", "default", "s3cret") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(reply(&session, "PING") == .error("NOAUTH Authentication required."))
        #expect(reply(&session, "AUTH", "quay", "s3cret") == .ok)
        #expect(reply(&session, "PING") == .simple("PONG"))
    }

    @Test func anEvalOfAPullScriptIsOnePullDatedByItsTimestamp() {
        var session = session()
        #expect(reply(&session, "EVAL", "s", "1", Self.tagKey, "42", "v1.2", Self.digest, "1800000000", "tag") == .bulk("1"))
        #expect(reply(&session, "EVAL", "s", "1", Self.digestKey, "42", Self.digest, "1799999990", "digest") == .bulk("1"))
        #expect(session.takePulls(receivedAt: received) == [
            tag(1_800_000_000),
            QuayPull(repositoryID: 42, reference: .digest(try! Digest(Self.digest)), time: Timestamp(millisecondsSinceEpoch: 1_799_999_990_000)),
        ])
        #expect(session.takePulls(receivedAt: received).isEmpty)
    }

    @Test func evalshaTakesOnlyScriptsTheServerKnows() {
        let scripts = ScriptDirectory()
        var first = QuaySession(configuration: QuaySessionConfiguration(), scripts: scripts)
        var second = QuaySession(configuration: QuaySessionConfiguration(), scripts: scripts)
        let sha = SHA1.hex(Array("the script".utf8))
        let call = ["EVALSHA", sha, "1", Self.tagKey, "42", "v1.2", Self.digest, "1800000000", "tag"].map { Array($0.utf8) }
        #expect(first.handle(call).reply == .error("NOSCRIPT No matching script. Please use EVAL."))
        #expect(reply(&first, "SCRIPT", "EXISTS", sha) == .array([.integer(0)]))
        #expect(reply(&first, "SCRIPT", "LOAD", "the script") == .bulk(sha))
        #expect(second.handle(call).reply == .bulk("1"))
        #expect(first.takePulls(receivedAt: received).isEmpty)
        #expect(second.takePulls(receivedAt: received) == [tag(1_800_000_000)])
    }

    @Test func theHmsetShapeCountsTheIncrementNotTheWrites() {
        var session = session()
        #expect(reply(&session, "HMSET", Self.tagKey, "repository_id", "42", "tag_name", "v1.2", "manifest_digest", Self.digest,
                      "last_pull_timestamp", "1800000000", "pull_method", "tag") == .ok)
        #expect(reply(&session, "HINCRBY", Self.tagKey, "pull_count", "1") == .integer(1))
        #expect(reply(&session, "EXPIRE", Self.tagKey, "2592000") == .integer(1))
        #expect(session.takePulls(receivedAt: received) == [tag(1_800_000_000)])
    }

    @Test func aTransactionRunsAtExecAndItsLaterTimestampDatesThePull() {
        var session = session()
        #expect(reply(&session, "MULTI") == .ok)
        #expect(reply(&session, "HSET", Self.tagKey, "repository_id", "42") == .simple("QUEUED"))
        #expect(reply(&session, "HINCRBY", Self.tagKey, "pull_count", "1") == .simple("QUEUED"))
        #expect(reply(&session, "HSET", Self.tagKey, "last_pull_timestamp", "1799999999") == .simple("QUEUED"))
        #expect(session.takePulls(receivedAt: received).isEmpty)
        #expect(reply(&session, "EXEC") == .array([.integer(1), .integer(1), .integer(1)]))
        #expect(session.takePulls(receivedAt: received) == [tag(1_799_999_999)])
    }

    @Test func aDiscardedOrAbortedTransactionCountsNothing() {
        var session = session()
        _ = reply(&session, "MULTI")
        _ = reply(&session, "HINCRBY", Self.tagKey, "pull_count", "1")
        #expect(reply(&session, "DISCARD") == .ok)
        _ = reply(&session, "MULTI")
        _ = reply(&session, "HINCRBY", Self.tagKey, "pull_count", "1")
        #expect(reply(&session, "FLUSHALL") != .simple("QUEUED"))
        #expect(reply(&session, "EXEC") == .error("EXECABORT Transaction discarded because of previous errors."))
        #expect(session.takePulls(receivedAt: received).isEmpty)
    }

    @Test func aTransactionHoldsAtMostTenThousandCommands() {
        var session = session()
        _ = reply(&session, "MULTI")
        for _ in 0..<10_000 {
            #expect(reply(&session, "HINCRBY", Self.tagKey, "pull_count", "1") == .simple("QUEUED"))
        }
        #expect(reply(&session, "HINCRBY", Self.tagKey, "pull_count", "1") == .error("ERR more than 10000 commands in one transaction"))
        #expect(reply(&session, "EXEC") == .error("EXECABORT Transaction discarded because of previous errors."))
        #expect(session.takePulls(receivedAt: received).isEmpty)
    }

    @Test func aTimeOutsideTheAllowedDelayIsClampedAndNoTimeMeansArrival() {
        var session = session()
        _ = reply(&session, "EVAL", "s", "1", Self.tagKey, "42", "v1.2", Self.digest, "4000000000", "tag")
        _ = reply(&session, "EVAL", "s", "1", Self.tagKey, "42", "v1.2", Self.digest, "1", "tag")
        _ = reply(&session, "HINCRBY", Self.tagKey, "pull_count", "1")
        let times = session.takePulls(receivedAt: received).map(\.time.millisecondsSinceEpoch)
        #expect(times == [received.millisecondsSinceEpoch, received.millisecondsSinceEpoch - 600_000, received.millisecondsSinceEpoch])
    }

    @Test(arguments: [
        (["HINCRBY", "pull_events:repo:42:tag:v1:sha256:zz", "pull_count", "1"], QuayInputError.invalidName),
        (["HINCRBY", "pull_events:repo:x:digest:\(digest)", "pull_count", "1"], .malformedKey),
        (["HINCRBY", "pull_events:repo:0:digest:\(digest)", "pull_count", "1"], .malformedKey),
        (["HINCRBY", "pull_events:repo:42:blob:\(digest)", "pull_count", "1"], .malformedKey),
        (["HINCRBY", "pull_events:repo:42:tag:v1", "pull_count", "1"], .malformedKey),
        (["HINCRBY", tagKey, "pull_count", "1000000"], .invalidIncrement),
        (["HINCRBY", tagKey, "pull_count", "-1"], .invalidIncrement),
        (["HINCRBY", "users:1", "pull_count", "1"], .notAPull),
        (["HSET", "other", "a", "b"], .notAPull),
        (["EVAL", "s", "2", tagKey, "other", "x"], .notAPull),
        (["EVAL", "s", "0", "x"], .notAPull),
    ])
    func badPullWritesGetAnErrorAndCountNothing(words: [String], reason: QuayInputError) {
        var session = session()
        guard case .error = session.handle(words.map { Array($0.utf8) }).reply else {
            Issue.record("expected an error reply")
            return
        }
        #expect(session.takeRefusals() == [reason])
        #expect(session.takePulls(receivedAt: received).isEmpty)
    }

    @Test func everythingElseIsRefusedAndQuitCloses() {
        var session = session()
        for words in [["GET", "x"], ["FLUSHALL"], ["KEYS", "*"], ["CONFIG", "SET", "dir", "/"], ["CLIENT", "KILL", "x"], ["SCRIPT", "FLUSH"]] {
            guard case .error = session.handle(words.map { Array($0.utf8) }).reply else {
                Issue.record("\(words) was not refused")
                continue
            }
        }
        let quit = session.handle([Array("QUIT".utf8)])
        #expect(quit.reply == .ok && quit.close)
    }
}
