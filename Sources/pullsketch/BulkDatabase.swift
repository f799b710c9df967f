import PullSketchStore

extension BlockingDatabase {
    /// One connection for a command that reads or writes large tables in bulk (`catalog sync`,
    /// `import`): statements may run for ten minutes, and none is JIT-compiled (that costs more than
    /// it saves on a statement run once per chunk).
    static func forBulkWork(_ connectionString: String) throws -> BlockingDatabase {
        try BlockingDatabase(connectionString, connections: 1, statementTimeout: .seconds(600), settings: ["jit": "off"])
    }
}
