import PullSketchRESP
import PullSketchTestSupport
import Testing

@Suite struct RESPParserTests {
    let parser = RESPParser()

    func command(_ arguments: String...) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments { bytes += Array("$\(argument.utf8.count)\r\n\(argument)\r\n".utf8) }
        return bytes
    }

    func words(_ result: RESPParseResult) -> [String]? {
        guard case .command(let arguments, _) = result else { return nil }
        return arguments.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func readsAnArrayOfBulkStringsAndWhatItConsumed() {
        let bytes = command("EVAL", "return 1", "1", "pull_events:repo:1:digest:sha256:ab") + Array("*1\r\n".utf8)
        let result = parser.parse(bytes)
        #expect(words(result) == ["EVAL", "return 1", "1", "pull_events:repo:1:digest:sha256:ab"])
        guard case .command(_, let consumed) = result else { return }
        #expect(consumed == bytes.count - 4)
    }

    @Test func bulkStringsAreBinarySafe() {
        let bytes = Array("*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n".utf8)
        #expect(words(parser.parse(bytes)) == ["ECHO", "a\r\nb"])
    }

    @Test func everyPrefixOfACommandIsIncomplete() {
        let bytes = command("HINCRBY", "pull_events:repo:7:tag:v1:sha256:00", "pull_count", "1")
        for end in 0..<bytes.count {
            #expect(parser.parse(Array(bytes[..<end])) == .incomplete, "prefix of \(end) bytes")
        }
    }

    @Test func readsInlineCommandsAndSkipsEmptyLines() {
        #expect(words(parser.parse(Array("PING\r\n".utf8))) == ["PING"])
        #expect(words(parser.parse(Array("select  1\n".utf8))) == ["select", "1"])
        #expect(parser.parse(Array("\r\n".utf8)) == .nothing(consumed: 2))
        #expect(parser.parse(Array("*0\r\n".utf8)) == .nothing(consumed: 4))
    }

    @Test(arguments: [
        ("*x\r\n", "Protocol error: invalid multibulk length"),
        ("*99999999999\r\n", "Protocol error: invalid multibulk length"),
        ("*1025\r\n", "Protocol error: invalid multibulk length"),
        ("*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
        ("*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        ("*1\r\n$2147483648\r\n", "Protocol error: invalid bulk length"),
        ("*1\r\n$1048577\r\n", "Protocol error: invalid bulk length"),
        ("*1\r\n$1\r\nab\r\n", "Protocol error: bulk string not followed by CRLF"),
        ("*1\r\n$1\r\na\r", "Protocol error: bulk string not followed by CRLF"),
        ("*1\r\n$\r\n", "Protocol error: invalid bulk length"),
    ])
    func refusesMalformedInputWithRedisMessages(input: String, message: String) {
        let result = parser.parse(Array(input.utf8))
        #expect(result == .invalid(message) || (input.hasSuffix("\r") && result == .incomplete))
    }

    @Test func aLengthBeyondTheLimitIsRefusedBeforeItsBytesArrive() {
        #expect(parser.parse(Array("*1\r\n$536870912\r\n".utf8)) == .invalid("Protocol error: invalid bulk length"))
        let longInline = [UInt8](repeating: UInt8(ascii: "a"), count: 65 << 10)
        #expect(parser.parse(longInline) == .invalid("Protocol error: too big inline request"))
    }

    @Test func aCommandThatKeepsGrowingIsRefusedAtTheCommandLimit() {
        let limits = RESPLimits(maximumArgumentBytes: 1_000, maximumCommandBytes: 4_000)
        let parser = RESPParser(limits: limits)
        var bytes = Array("*100\r\n".utf8)
        let argument = String(repeating: "x", count: 900)
        while bytes.count <= limits.maximumCommandBytes {
            #expect(parser.parse(bytes) == .incomplete)
            bytes += Array("$900\r\n\(argument)\r\n".utf8)
        }
        #expect(parser.parse(bytes) == .invalid("Protocol error: command too large"))
    }

    /// Fuzzing in the test suite: random and mutated inputs never crash the parser, every result is
    /// within the buffer, and a valid stream parses to the same commands however it is split.
    @Test func randomAndMutatedInputsParseSafely() {
        var generator = SeededGenerator(seed: 15)
        let valid = command("EVAL", "s", "1", "pull_events:repo:1:tag:v1:sha256:aa", "1", "v1", "sha256:aa", "1700000000", "tag")
            + command("PING") + Array("PING\r\n".utf8) + command("SELECT", "1")
        for _ in 0..<20_000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0...2, using: &generator) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: index)
                }
            }
            var offset = 0
            while offset < bytes.count {
                switch parser.parse(Array(bytes[offset...])) {
                case .command(_, let consumed), .nothing(let consumed):
                    #expect(consumed > 0 && consumed <= bytes.count - offset)
                    offset += max(consumed, 1)
                case .incomplete, .invalid:
                    offset = bytes.count
                }
            }
        }
        var whole: [String] = []
        var offset = 0
        while case .command(let arguments, let consumed) = parser.parse(Array(valid[offset...])) {
            whole.append(arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))
            offset += consumed
        }
        #expect(whole.count == 4)
        for split in 1..<valid.count {
            var stream: [UInt8] = []
            var commands: [String] = []
            for chunk in [valid[..<split], valid[split...]] {
                stream += chunk
                while case .command(let arguments, let consumed) = parser.parse(stream) {
                    commands.append(arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))
                    stream.removeFirst(consumed)
                }
            }
            #expect(commands == whole, "split at \(split)")
        }
    }

    @Test func repliesEncodeAsRedisWritesThem() {
        #expect(RESPReply.ok.bytes == Array("+OK\r\n".utf8))
        #expect(RESPReply.error("ERR bad\r\nthing").bytes == Array("-ERR bad  thing\r\n".utf8))
        #expect(RESPReply.integer(-3).bytes == Array(":-3\r\n".utf8))
        #expect(RESPReply.bulk(nil).bytes == Array("$-1\r\n".utf8))
        #expect(RESPReply.array([.bulk("0"), .array([])]).bytes == Array("*2\r\n$1\r\n0\r\n*0\r\n".utf8))
    }

    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
        (String(repeating: "x", count: 200), "94218caae9904e93a3d7bf578bf4791926fc5e82"),
    ])
    func sha1MatchesTheStandardVectorsAndRedisScriptNames(message: String, digest: String) {
        #expect(SHA1.hex(Array(message.utf8)) == digest)
    }
}
