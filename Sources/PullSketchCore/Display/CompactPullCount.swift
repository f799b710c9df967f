/// Pull counts as the UI shows them: exact below 1,000 (`7`, `999`); one truncated
/// decimal in thousands below 10,000 (`1.7K`, `9.9K`, `1K`); then the floor of a step ladder
/// (`10K+`, `50K+`, `100K+`, `500K+`, `1M+`). Truncation, never rounding up: a label never claims
/// more pulls than there were.
public enum CompactPullCount {
    private static let ladder: [(threshold: UInt64, label: String)] = [
        (1_000_000, "1M+"), (500_000, "500K+"), (100_000, "100K+"), (50_000, "50K+"), (10_000, "10K+"),
    ]

    public static func string(_ count: UInt64) -> String {
        if count < 1_000 { return String(count) }
        if count < 10_000 {
            let tenths = count / 100
            return tenths % 10 == 0 ? "\(tenths / 10)K" : "\(tenths / 10).\(tenths % 10)K"
        }
        return ladder.first { count >= $0.threshold }!.label
    }
}
