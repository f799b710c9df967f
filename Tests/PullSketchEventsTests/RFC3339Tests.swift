import PullSketchEvents
import PullSketchCore
import Testing

@Suite struct RFC3339Tests {
    @Test(arguments: [
        ("2026-11-22T01:02:03.123456789Z", 1_795_309_323_123),
        ("2026-11-22T01:02:03Z", 1_795_309_323_000),
        ("2026-11-22T03:02:03.5+02:00", 1_795_309_323_500),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("2026-11-22T01:02:03-23:59", 1_795_395_663_000),
    ] as [(String, Int64)])
    func parsesRegistryTimesToUTCMilliseconds(text: String, milliseconds: Int64) {
        #expect(RFC3339.parse(text) == Timestamp(millisecondsSinceEpoch: milliseconds))
    }

    @Test(arguments: [
        "", "2026-11-22", "2026-11-22 01:02:03Z", "2026-13-01T00:00:00Z", "2026-11-22T01:02:03", "2026-11-22T01:02:03.Z", "2026-11-22T01:02:03+0200",
        "2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-22T01:02:03+25:00", "2026-11-22T01:02:03-02:60",
    ])
    func refusesAnythingElse(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func formatsUTCWithMilliseconds() {
        #expect(RFC3339.format(Timestamp(millisecondsSinceEpoch: 1_795_309_323_123)) == "2026-11-22T01:02:03.123Z")
        #expect(RFC3339.format(Timestamp(millisecondsSinceEpoch: -1)) == "1969-12-31T23:59:59.999Z")
        #expect(RFC3339.format(Timestamp(millisecondsSinceEpoch: 951_782_400_000)) == "2000-02-29T00:00:00.000Z")
    }
}
