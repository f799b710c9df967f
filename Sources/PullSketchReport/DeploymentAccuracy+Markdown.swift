import Foundation
public import PullSketchStore

extension DeploymentAccuracy {
    /// The figures as Markdown tables, as `pullsketch report --from-postgres` prints them.
    public func markdown() -> String {
        func line(_ name: String, _ table: Table) -> String {
            let share = table.rows == 0 ? 100 : 100 * Double(table.exact) / Double(table.rows)
            let errors = table.relativeError.isEmpty ? "—" : table.relativeError.map { String(format: "%.4f", $0) }.joined(separator: " / ")
            return "| \(name) | \(table.rows) | \(table.exact) (\(String(format: "%.2f", share)) %) | \(table.rows - table.exact) | \(errors) |"
        }
        var text = """
            | statistics rows | rows | exact | approximate | error ÷ count of approximate rows: p50 / p90 / p99 / max |
            |---|---:|---:|---:|---|
            \(line("tags", tags))
            \(line("manifests", manifests))

            Ledger: \(reconciledBatches) reconciled batches kept.
            """
        if !widest.isEmpty {
            text += "\n\n| widest bounds | key | count | error |\n|---|---|---:|---:|\n"
            text += widest.map { "| \($0.kind) | \($0.repository) \($0.key) | \($0.count) | \($0.error) |" }.joined(separator: "\n")
        }
        return text
    }
}
