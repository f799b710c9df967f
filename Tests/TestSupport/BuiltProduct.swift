public import Foundation

/// An executable of this package from the build folder the tests run from (`swift build
/// --build-tests` builds every product next to the test bundle).
public func builtProduct(_ name: String) -> URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name)
}
