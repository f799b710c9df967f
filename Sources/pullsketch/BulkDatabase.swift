import PullSketchStore

extension BlockingDatabase {
    /// One connection for a command that reads or writes large tables in bulk (`catalog sync`,
    /// `import`): statements may run for ten minutes.
    static func forBulkWork(_ connectionString: String) throws -> BlockingDatabase {
        try BlockingDatabase(connectionString, connections: 1, statementTimeout: .seconds(600))
    }
}
