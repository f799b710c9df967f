/// Text literals of PostgreSQL arrays, for bulk statements (`unnest($1::text[], $2::bigint[])`):
/// one parameter carries a whole column, so a batch is one statement, not one per key.
public enum PostgresArray {
    /// `{"a","b\"c",NULL}`: every element quoted, `"` and `\` escaped, nil as NULL.
    public static func literal(_ elements: some Sequence<String?>) -> String {
        var text = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { text += "," }
            guard let element else {
                text += "NULL"
                continue
            }
            text += "\""
            if element.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                for scalar in element.unicodeScalars {
                    if scalar == "\"" || scalar == "\\" { text.unicodeScalars.append("\\") }
                    text.unicodeScalars.append(scalar)
                }
            } else {
                text += element
            }
            text += "\""
        }
        return text + "}"
    }

    public static func literal(_ elements: some Sequence<String>) -> String {
        literal(elements.map { Optional($0) })
    }
}
