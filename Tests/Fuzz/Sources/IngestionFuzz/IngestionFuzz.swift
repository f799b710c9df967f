import Foundation
import FuzzDriver
import PullSketchEvents

@main
struct IngestionFuzz {
    static func main() {
        runLibFuzzer { start, count in ingestionFuzz(UnsafeRawBufferPointer(start: start, count: count)) }
    }
}

/// One libFuzzer input: a request body of `POST /notifications` or `POST /api/v1/pulls`. The node's
/// byte readers must read it exactly as `JSONDecoder` does (the same body, or both refuse it); a
/// difference, a crash or a sanitizer report is a finding.
func ingestionFuzz(_ bytes: UnsafeRawBufferPointer) -> CInt {
    let envelope = NotificationEnvelope(json: bytes)
    let expectedEnvelope = try? JSONDecoder().decode(NotificationEnvelope.self, from: Data(bytes))
    precondition(envelope == expectedEnvelope, "envelope: read \(String(describing: envelope)), JSONDecoder \(String(describing: expectedEnvelope))")
    let pulls = DirectPulls(json: bytes)
    let expectedPulls = try? JSONDecoder().decode(DirectPulls.self, from: Data(bytes))
    precondition(pulls == expectedPulls, "pulls: read \(String(describing: pulls)), JSONDecoder \(String(describing: expectedPulls))")
    return 0
}
