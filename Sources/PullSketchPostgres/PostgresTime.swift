/// SQL for times that travel as milliseconds since 1970 (UTC) in `bigint` parameters and arrays.
public enum PostgresTime {
    /// The `timestamptz` at `milliseconds`, a `bigint` SQL expression (NULL stays NULL). It divides
    /// as `double precision`: `/ 1000.0` would divide as `numeric` and reach `to_timestamp` through
    /// a text conversion, 0.7 µs a row against 0.03 µs, for the same double (both are the one
    /// nearest the exact quotient while |milliseconds| < 2⁵³), hence the same time.
    public static func timestamp(milliseconds expression: String) -> String {
        "to_timestamp(\(expression)::float8 / 1000)"
    }
}
