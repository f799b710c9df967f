/// Byte-level predicates for the OCI distribution grammar. Names are ASCII, so any other byte
/// (including every byte of a non-ASCII character) fails these checks. Nothing here allocates.
enum ASCIIGrammar {
    /// Calls `check` with the string's UTF-8 bytes, contiguous, and returns its verdict.
    static func problem(in string: String, _ check: (UnsafeBufferPointer<UInt8>) -> String?) -> String? {
        if let verdict = string.utf8.withContiguousStorageIfAvailable(check) { return verdict }
        return Array(string.utf8).withUnsafeBufferPointer(check)
    }

    static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || isDigit(byte)
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    static func isLowerHex(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    /// `[a-z0-9]+(SEP[a-z0-9]+)*`, where a separator is a run of one repeated byte that
    /// `isSeparator(byte, runLength)` accepts; a run mixing bytes is never a separator.
    static func isSeparatedLowerAlphanumeric(
        _ bytes: some Collection<UInt8>,
        isSeparator: (UInt8, Int) -> Bool
    ) -> Bool {
        var sawAlphanumeric = false
        var runByte: UInt8 = 0
        var runLength = 0
        for byte in bytes {
            if isLowerAlphanumeric(byte) {
                if runLength > 0 {
                    guard sawAlphanumeric, isSeparator(runByte, runLength) else { return false }
                    runLength = 0
                }
                sawAlphanumeric = true
            } else {
                if runLength > 0, byte != runByte { return false }
                runByte = byte
                runLength += 1
            }
        }
        return sawAlphanumeric && runLength == 0
    }
}
