import Logging
import PullSketchConfig
import PullSketchCore
import PullSketchEvents
import Synchronization
import Testing

@Suite struct UTCLogHandlerTests {
    /// A logger whose lines are kept instead of written.
    final class Lines: Sendable {
        let written = Mutex<[String]>([])

        func logger(label: String) -> Logger {
            Logger(label: label) { label in UTCLogHandler(label: label) { line in self.written.withLock { $0.append(line) } } }
        }
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String { "connection refused" }
    }

    @Test func aLineCarriesItsUTCTimeLevelLabelSortedMetadataSourceAndMessage() throws {
        let lines = Lines()
        var logger = lines.logger(label: "pullsketch.test")
        logger[metadataKey: "shard"] = "3"
        logger[metadataKey: "attempt"] = "1"
        let before = Timestamp.now()
        logger.warning("merge failed", error: Refused(), metadata: ["attempt": "2"], source: "Flusher")
        let after = Timestamp.now()
        let line = try #require(lines.written.withLock { $0.first })
        let stamp = try #require(line.split(separator: " ").first.map(String.init))
        #expect(stamp.hasSuffix("Z") && stamp.count == "2026-12-02T11:30:00.123Z".count)
        let time = try #require(RFC3339.parse(stamp))
        #expect(before <= time && time <= after)
        #expect(line.dropFirst(stamp.count) == " warning pullsketch.test: attempt=2 error=connection refused shard=3 [Flusher] merge failed\n")
    }

    @Test func debugIsNotWrittenAndALineWithoutMetadataHasNoFields() {
        let lines = Lines()
        let logger = lines.logger(label: "pullsketch.test")
        logger.debug("not written at the default level")
        logger.info("serving", source: "Node")
        #expect(lines.written.withLock { $0.map { $0.split(separator: " ", maxSplits: 1).last ?? "" } } == ["info pullsketch.test: [Node] serving\n"])
    }
}
