import PullSketchCore

// The C ABI of `include/pullsketch.h`. Every function returns a code or NULL; nothing is thrown or
// trapped across the boundary.

/// Result codes, as the header numbers them.
enum ResultCode: Int32, CaseIterable {
    case ok = 0
    case disabled = 1
    case invalidHandle = -1
    case forked = -2
    case invalidRepository = -3
    case invalidTag = -4
    case invalidDigest = -5
    case invalidMethod = -6
    case noReference = -7
    case invalidTime = -8

    var text: StaticString {
        switch self {
        case .ok: "ok"
        case .disabled: "FEATURE_IMAGE_PULL_STATS is off: nothing recorded"
        case .invalidHandle: "no tracker: the handle is NULL"
        case .forked: "the tracker was opened by the parent process: open one in this process"
        case .invalidRepository: "not an OCI repository name"
        case .invalidTag: "not an OCI tag"
        case .invalidDigest: "not a digest (algorithm:encoded)"
        case .invalidMethod: "the method is not GET or HEAD"
        case .noReference: "neither a tag nor a digest"
        case .invalidTime: "the time is negative"
        }
    }
}

@_cdecl("pullsketch_open")
public func pullsketchOpen(_ configuration: UnsafePointer<CChar>?, _ reason: UnsafeMutablePointer<CChar>?, _ reasonSize: Int) -> UnsafeMutableRawPointer? {
    do {
        guard let configuration else { throw OpenError("no configuration") }
        let tracker = EmbeddedTracker(try EmbeddedTracker.configuration(String(cString: configuration)))
        return Unmanaged.passRetained(tracker).toOpaque()
    } catch {
        if let reason, reasonSize > 0 {
            let bytes = Array("\(error)".utf8.prefix(reasonSize - 1))
            for (index, byte) in bytes.enumerated() { reason[index] = CChar(bitPattern: byte) }
            reason[bytes.count] = 0
        }
        return nil
    }
}

@_cdecl("pullsketch_record")
public func pullsketchRecord(
    _ handle: UnsafeMutableRawPointer?, _ repository: UnsafePointer<CChar>?, _ tag: UnsafePointer<CChar>?, _ digest: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?, _ servedDigest: UnsafePointer<CChar>?, _ time: Int64
) -> Int32 {
    guard let handle else { return ResultCode.invalidHandle.rawValue }
    let embedded = Unmanaged<EmbeddedTracker>.fromOpaque(handle).takeUnretainedValue()
    guard embedded.forkGeneration == Fork.generation else { return ResultCode.forked.rawValue }
    return record(embedded, repository, tag, digest, method, servedDigest, time).rawValue
}

private func record(
    _ embedded: EmbeddedTracker, _ repository: UnsafePointer<CChar>?, _ tag: UnsafePointer<CChar>?, _ digest: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?, _ servedDigest: UnsafePointer<CChar>?, _ time: Int64
) -> ResultCode {
    guard let repository = repository.flatMap({ try? RepositoryName(String(cString: $0)) }) else { return .invalidRepository }
    guard let method = method.flatMap({ ManifestRequestMethod(rawValue: String(cString: $0)) }) else { return .invalidMethod }
    guard time >= 0 else { return .invalidTime }
    let reference: ManifestReference
    if let tag {
        guard let name = try? TagName(String(cString: tag)) else { return .invalidTag }
        reference = .tag(name)
    } else if let digest {
        guard let value = try? Digest(String(cString: digest)) else { return .invalidDigest }
        reference = .digest(value)
    } else {
        return .noReference
    }
    var served: Digest?
    if let servedDigest {
        guard let value = try? Digest(String(cString: servedDigest)) else { return .invalidDigest }
        served = value
    }
    guard embedded.tracker.configuration.isEnabled else { return .disabled }
    embedded.tracker.record(PullEvent(
        repository: repository, reference: reference, method: method, servedDigest: served,
        time: time == 0 ? .now() : Timestamp(millisecondsSinceEpoch: time)
    ))
    return .ok
}

@_cdecl("pullsketch_close")
public func pullsketchClose(_ handle: UnsafeMutableRawPointer?) -> Int32 {
    guard let handle else { return ResultCode.invalidHandle.rawValue }
    let unmanaged = Unmanaged<EmbeddedTracker>.fromOpaque(handle)
    guard unmanaged.takeUnretainedValue().forkGeneration == Fork.generation else { return ResultCode.forked.rawValue }
    unmanaged.takeUnretainedValue().close()
    unmanaged.release()
    return ResultCode.ok.rawValue
}

@_cdecl("pullsketch_describe")
public func pullsketchDescribe(_ code: Int32) -> UnsafePointer<CChar> {
    let text: StaticString = ResultCode(rawValue: code)?.text ?? "unknown result code"
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

private struct OpenError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
