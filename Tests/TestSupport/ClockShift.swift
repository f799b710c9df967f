public import Foundation

/// `scripts/clock-shift.c` built into a library that, preloaded (`LD_PRELOAD`) into a program with
/// `PULLSKETCH_CLOCK_SHIFT_S` set, shifts its wall clock: a host whose clock is wrong.
public enum ClockShift {
    /// The variables that shift a program's clock by `seconds`, with the library built into
    /// `directory`.
    public static func environment(seconds: Int64, buildingInto directory: URL) throws -> [String: String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let library = directory.appendingPathComponent("clock-shift.so")
        if !FileManager.default.fileExists(atPath: library.path) {
            try ChildProcess.run("/usr/bin/gcc", ["-shared", "-fPIC", "-o", library.path, root.appendingPathComponent("scripts/clock-shift.c").path, "-ldl"])
        }
        return ["LD_PRELOAD": library.path, "PULLSKETCH_CLOCK_SHIFT_S": String(seconds)]
    }
}
