import Foundation
import FuzzDriver
import PullSketchEvents

@main
struct NotificationFuzz {
    static func main() {
        runLibFuzzer { start, count in notificationFuzz(UnsafeRawBufferPointer(start: start, count: count)) }
    }
}

/// One libFuzzer input: a notification body. The node's byte reader must read it exactly as
/// `JSONDecoder` does (the same envelope, or both refuse it); a difference, a crash or a sanitizer
/// report is a finding.
func notificationFuzz(_ bytes: UnsafeRawBufferPointer) -> CInt {
    let read = NotificationEnvelope(json: bytes)
    let expected = try? JSONDecoder().decode(NotificationEnvelope.self, from: Data(bytes))
    precondition(read == expected, "the byte reader read \(String(describing: read)), JSONDecoder \(String(describing: expected))")
    return 0
}
