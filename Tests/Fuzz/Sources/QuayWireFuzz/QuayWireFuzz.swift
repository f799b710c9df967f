import FuzzDriver
import PullSketchCore
import PullSketchQuay
import PullSketchRESP

@main
struct QuayWireFuzz {
    static func main() {
        runLibFuzzer { start, count in quayWireFuzz(UnsafeRawBufferPointer(start: start, count: count)) }
    }
}

/// One libFuzzer input: bytes a client sends to the Quay endpoint. They are parsed as the endpoint
/// parses them and every command goes through a session, as on a connection. Crashes, sanitizer
/// reports and broken invariants (a parse that consumes nothing or more than it has) are findings.
func quayWireFuzz(_ bytes: UnsafeRawBufferPointer) -> CInt {
    let count = bytes.count
    let parser = RESPParser(limits: RESPLimits(maximumArguments: 64, maximumArgumentBytes: 4_096, maximumCommandBytes: 8_192))
    var session = QuaySession(configuration: QuaySessionConfiguration(password: count % 2 == 0 ? nil : "pw"), scripts: ScriptDirectory())
    var offset = 0
    var reply: [UInt8] = []
    parsing: while offset < bytes.count {
        switch parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
        case .command(let command, let consumed):
            precondition(consumed > 0 && consumed <= bytes.count - offset)
            let answer = session.handle(command)
            answer.reply.encode(into: &reply)
            offset += consumed
            if answer.close { break parsing }
        case .nothing(let consumed):
            precondition(consumed > 0 && consumed <= bytes.count - offset)
            offset += consumed
        case .incomplete, .invalid:
            break parsing
        }
    }
    for pull in session.takePulls(receivedAt: Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)) {
        precondition(pull.count >= 1 && pull.count <= 1_000)
        precondition(pull.time.millisecondsSinceEpoch <= 1_800_000_000_000)
    }
    _ = session.takeRefusals()
    return 0
}
