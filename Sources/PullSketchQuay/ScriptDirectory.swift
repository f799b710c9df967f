import PullSketchRESP
import Synchronization

/// The SHA-1 names of the scripts clients loaded (`SCRIPT LOAD`) or ran (`EVAL`), shared by every
/// connection of an endpoint as Redis's script cache is, so `EVALSHA` of a known script is taken and
/// of an unknown one answered `NOSCRIPT` (the client then loads it). Bounded: when full, it starts
/// over, and clients simply load their script again.
public final class ScriptDirectory: Sendable {
    static let capacity = 1_024

    private struct Scripts {
        var names: Set<String> = []
        /// The name of each script seen, so a script sent with every pull is hashed once.
        var byText: [[UInt8]: String] = [:]
    }

    private let scripts = Mutex(Scripts())

    public init() {}

    /// Remembers `script` and returns its name.
    @discardableResult
    func load(_ script: [UInt8]) -> String {
        if let name = scripts.withLock({ $0.byText[script] }) { return name }
        let name = SHA1.hex(script)
        scripts.withLock { scripts in
            if scripts.names.count >= Self.capacity { scripts = Scripts() }
            scripts.names.insert(name)
            scripts.byText[script] = name
        }
        return name
    }

    func contains(_ name: [UInt8]) -> Bool {
        let text = String(decoding: name, as: UTF8.self).lowercased()
        return scripts.withLock { $0.names.contains(text) }
    }
}
