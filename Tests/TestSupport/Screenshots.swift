public import Foundation

/// Whether `screenshot` is a PNG of some substance; a copy is kept as `<folder>/<name>` when
/// `PULLSKETCH_SCREENSHOTS` names a folder (`docs/images` refreshes the documentation's).
public func keepScreenshot(_ screenshot: URL, as name: String) throws -> Bool {
    let png = try Data(contentsOf: screenshot)
    guard png.starts(with: [0x89, 0x50, 0x4E, 0x47]), png.count > 5_000 else { return false }
    if let folder = ProcessInfo.processInfo.environment["PULLSKETCH_SCREENSHOTS"] {
        let target = URL(fileURLWithPath: folder).appendingPathComponent(name)
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.copyItem(at: screenshot, to: target)
    }
    return true
}
