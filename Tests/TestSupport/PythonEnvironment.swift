public import Foundation

/// A Python virtual environment with pinned PyPI packages, made from Debian's python3 (package
/// `python3-venv`) once per build folder, under `.build/python/<name>`, and reused after. Made in
/// a temporary folder and moved into place, so tests racing to make it never see half of one.
public enum PythonEnvironment {
    /// The package folder.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The python executable of the environment `name` holding exactly `packages` (`redis==7.1.0`).
    public static func python(_ name: String, packages: [String]) throws -> URL {
        let folder = root.appendingPathComponent(".build/python/\(name)")
        let python = folder.appendingPathComponent("bin/python")
        if FileManager.default.isExecutableFile(atPath: python.path) { return python }
        try FileManager.default.createDirectory(at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
        let staging = folder.deletingLastPathComponent().appendingPathComponent("\(name).\(UUID().uuidString)")
        try ChildProcess.run("/usr/bin/python3", ["-m", "venv", staging.path])
        try ChildProcess.run(staging.appendingPathComponent("bin/pip").path, ["install", "--quiet", "--disable-pip-version-check"] + packages)
        // A moved environment keeps working through `bin/python` (its other scripts name the old path).
        let move = "import os, shutil, sys\ntry: os.rename(sys.argv[1], sys.argv[2])\nexcept OSError: shutil.rmtree(sys.argv[1])"
        try ChildProcess.run("/usr/bin/python3", ["-c", move, staging.path, folder.path])
        return python
    }
}
