import Foundation
import PullSketchCore
import PullSketchEvents

/// A request as distribution's registry logs it, in the three forms it writes: its access log on
/// standard output, one line in Apache's combined format per request
/// (`127.0.0.1 - - [06/Dec/2026:15:03:26 +0000] "GET /v2/team/app/manifests/v1 HTTP/1.1" 200 401 "" "skopeo/1.9.3"`),
/// and its application log on standard error, whose `response completed` line logrus writes as
/// text (`time="…" level=info msg="response completed" … http.request.uri=… http.response.status=200`)
/// or, with `log.formatter: json`, as a JSON object of the same fields. Neither names the digest a
/// tag resolved to, so a pull by tag counts for the tag alone.
struct RegistryLogLine {
    enum Log { case access, application }

    var log: Log
    var method: String
    /// The request's URI as logged, query and percent-encoding included.
    var uri: String
    var status: Int
    var time: String
    var userAgent: String?

    /// What the line records: a manifest pull, nothing PullSketch counts (a pull by a client
    /// `clients` names included), or why it cannot be read.
    func ingested(ignoring clients: IgnoredClients) -> IngestedEvent {
        guard !clients.ignores(userAgent: userAgent) else { return .ignored }
        let path = uri.prefix { $0 != "?" }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard (200..<300).contains(status), let method = ManifestRequestMethod(rawValue: method), segments.count >= 5, segments[0].isEmpty,
            segments[1] == "v2", segments[segments.count - 2] == "manifests"
        else { return .ignored }
        guard let name = segments[2..<segments.count - 2].joined(separator: "/").removingPercentEncoding,
            let reference = segments[segments.count - 1].removingPercentEncoding
        else { return .invalid("path '\(path)' cannot be decoded") }
        guard let time = log == .access ? Self.accessTime(time) : RFC3339.parse(time) else { return .invalid("time '\(time)' cannot be read") }
        guard let repository = try? RepositoryName(name) else { return .invalid("invalid repository '\(name)'") }
        if reference.contains(":") {
            guard let digest = try? Digest(reference) else { return .invalid("invalid digest '\(reference)'") }
            return .pull(PullEvent(repository: repository, reference: .digest(digest), method: method, time: time))
        }
        guard let tag = try? TagName(reference) else { return .invalid("invalid tag '\(reference)'") }
        return .pull(PullEvent(repository: repository, reference: .tag(tag), method: method, time: time))
    }
}

extension RegistryLogLine {
    /// What one line of a registry's logs holds.
    enum Record {
        case access(RegistryLogLine)
        /// A line of the application log: a request, or nil for any other line it writes.
        case application(RegistryLogLine?)
        case unknown
    }

    /// The record in `line`, past whatever a log collector wrote before it: journald's and
    /// syslog's `… docker-registry[pid]: `, the time `kubectl logs --timestamps` adds, a CRI log
    /// file's `<time> stdout F `, or Docker's `json-file` object around it (`{"log": …}`).
    static func record(in line: Data) -> Record {
        var line = line
        while line.last == UInt8(ascii: "\n") || line.last == UInt8(ascii: "\r") { line.removeLast() }
        if let request = RegistryLogLine(accessLine: line) { return .access(request) }
        if let start = line.withUnsafeBytes({ find("time=\"", in: $0[...]) }), let fields = logfmt(line[(line.startIndex + start.lowerBound)...]),
            fields["msg"] != nil
        {
            return .application(RegistryLogLine(text: fields))
        }
        if let brace = line.firstIndex(of: UInt8(ascii: "{")),
            let object = (try? JSONSerialization.jsonObject(with: line[brace...])) as? [String: Any], let record = record(json: object)
        {
            return record
        }
        return .unknown
    }

    /// The record in a JSON object: the application log's, or a line Docker wrapped; nil for an
    /// object of neither kind.
    static func record(json object: [String: Any]) -> Record? {
        if let wrapped = object["log"] as? String { return record(in: Data(wrapped.utf8)) }
        return object["msg"] != nil ? .application(RegistryLogLine(json: object)) : nil
    }

    /// An access log line (`host ident user [time] "method uri protocol" status size "referer"
    /// "agent"`), or nil when `line` is not one. Read as bytes: a log has millions of lines.
    init?(accessLine line: Data) {
        guard let request = line.withUnsafeBytes(Self.access) else { return nil }
        self = request
    }

    private static func access(_ line: UnsafeRawBufferPointer) -> RegistryLogLine? {
        guard let open = find(" [", in: line[...]), let close = find("] \"", in: line[open.upperBound...]),
            let requestEnd = find("\" ", in: line[close.upperBound...])
        else { return nil }
        let request = line[close.upperBound..<requestEnd.lowerBound].split(separator: UInt8(ascii: " "))
        func text(_ bytes: Slice<UnsafeRawBufferPointer>) -> String { String(decoding: bytes, as: UTF8.self) }
        let statusText = line[requestEnd.upperBound...].prefix { $0 != UInt8(ascii: " ") }
        guard request.count == 3, request[2].starts(with: "HTTP/".utf8), statusText.count == 3, let status = Int(text(statusText)) else { return nil }
        return RegistryLogLine(
            log: .access, method: text(request[0]), uri: text(request[1]), status: status, time: text(line[open.upperBound..<close.lowerBound]),
            userAgent: userAgent(afterStatus: line[statusText.endIndex...])
        )
    }

    /// The last of the access line's two quoted fields after its status (` size "referer"
    /// "agent"`); nil when they are not there.
    private static func userAgent(afterStatus bytes: Slice<UnsafeRawBufferPointer>) -> String? {
        var rest = bytes
        var fields: [[UInt8]] = []
        while let quote = rest.firstIndex(of: UInt8(ascii: "\"")) {
            rest = rest[(quote + 1)...]
            guard let field = quoted(&rest) else { return nil }
            fields.append(field)
        }
        return fields.count == 2 ? String(decoding: fields[1], as: UTF8.self) : nil
    }

    /// The text of a string quoted as Go quotes it (`\"` and `\\` inside) whose opening quote was
    /// just read from `bytes`, leaving `bytes` after its closing quote; nil when it is not closed.
    private static func quoted<Bytes: Collection>(_ bytes: inout Bytes) -> [UInt8]? where Bytes.Element == UInt8, Bytes.SubSequence == Bytes {
        var value: [UInt8] = []
        while let byte = bytes.popFirst() {
            if byte == UInt8(ascii: "\"") { return value }
            if byte == UInt8(ascii: "\\") {
                guard let escaped = bytes.popFirst() else { return nil }
                value.append(escaped)
            } else {
                value.append(byte)
            }
        }
        return nil
    }

    /// Where `needle` first occurs in `bytes`.
    private static func find(_ needle: StaticString, in bytes: Slice<UnsafeRawBufferPointer>) -> Range<Int>? {
        let needle = UnsafeBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
        var from = bytes.startIndex
        while let first = bytes[from...].firstIndex(of: needle[0]) {
            let end = first + needle.count
            if end <= bytes.endIndex, bytes[first..<end].elementsEqual(needle) { return first..<end }
            from = first + 1
        }
        return nil
    }

    /// An application log line in logrus's text format (`logfmt`'s fields) that says `response
    /// completed`; nil for any other.
    init?(text fields: [String: String]) {
        guard fields["msg"] == "response completed", let method = fields["http.request.method"],
            let uri = fields["http.request.uri"], let status = fields["http.response.status"].flatMap({ Int($0) }), let time = fields["time"]
        else { return nil }
        self.init(log: .application, method: method, uri: uri, status: status, time: time, userAgent: fields["http.request.useragent"])
    }

    /// The same line in logrus's JSON format.
    init?(json object: [String: Any]) {
        guard object["msg"] as? String == "response completed", let method = object["http.request.method"] as? String,
            let uri = object["http.request.uri"] as? String, let status = object["http.response.status"] as? Int, let time = object["time"] as? String
        else { return nil }
        self.init(log: .application, method: method, uri: uri, status: status, time: time, userAgent: object["http.request.useragent"] as? String)
    }

    /// `key=value` pairs separated by spaces, a value quoted as Go quotes strings when it holds
    /// spaces or other characters (`\"` and `\\` inside); nil when `line` is not in that form.
    static func logfmt(_ line: Data) -> [String: String]? {
        var fields: [String: String] = [:]
        var bytes = line[...]
        while let first = bytes.first {
            if first == UInt8(ascii: " ") {
                bytes = bytes.dropFirst()
                continue
            }
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let key = String(decoding: bytes[..<equals], as: UTF8.self)
            bytes = bytes[(equals + 1)...]
            let value: [UInt8]
            if bytes.first == UInt8(ascii: "\"") {
                bytes = bytes.dropFirst()
                guard let text = quoted(&bytes) else { return nil }
                value = text
            } else {
                let end = bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex
                value = Array(bytes[..<end])
                bytes = bytes[end...]
            }
            guard !key.isEmpty, !key.contains(" ") else { return nil }
            fields[key] = String(decoding: value, as: UTF8.self)
        }
        return fields
    }

    /// `06/Dec/2026:15:03:26 +0000`, the access log's time, read as the RFC 3339 time it spells.
    static func accessTime(_ text: String) -> Timestamp? {
        let parts = text.split(separator: " ")
        let date = parts.first?.split(separator: ":", maxSplits: 1) ?? []
        let day = date.first?.split(separator: "/") ?? []
        guard parts.count == 2, date.count == 2, day.count == 3, day[0].count == 2, day[2].count == 4,
            let month = months.firstIndex(of: String(day[1])), parts[1].count == 5
        else { return nil }
        let offset = parts[1]
        let rfc3339 = "\(day[2])-\(month < 9 ? "0" : "")\(month + 1)-\(day[0])T\(date[1])\(offset.prefix(3)):\(offset.suffix(2))"
        return RFC3339.parse(rfc3339)
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}
