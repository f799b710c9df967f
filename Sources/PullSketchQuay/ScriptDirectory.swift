import PullSketchRESP
import Synchronization

/// The SHA-1 names of the scripts clients loaded (`SCRIPT LOAD`) or ran (`EVAL`), shared by every
/// connection of an endpoint as Redis's script cache is, so `EVALSHA` of a known script is taken and
/// of an unknown one answered `NOSCRIPT` (the client then loads it). Bounded: when full, it starts
/// over, and clients simply load their script again.
public final class ScriptDirectory: Sendable {
    static let capacity = 1_024
    private let names = Mutex<Set<String>>([])

    public init() {}

    /// Remembers `script` and returns its name.
    @discardableResult
    func load(_ script: [UInt8]) -> String {
        let name = SHA1.hex(script)
        names.withLock { names in
            if names.count >= Self.capacity, !names.contains(name) { names.removeAll() }
            names.insert(name)
        }
        return name
    }

    func contains(_ name: [UInt8]) -> Bool {
        let text = String(decoding: name, as: UTF8.self).lowercased()
        return names.withLock { $0.contains(text) }
    }
}
