/// Byte-level predicates for the OCI distribution grammar. Names are ASCII, so any other byte
/// (including every byte of a non-ASCII character) fails these checks.
enum ASCIIGrammar {
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

    /// `[a-z0-9]+(SEP[a-z0-9]+)*` where `isSeparatorRun` decides which runs of non-alphanumeric
    /// bytes may join two alphanumeric runs.
    static func isSeparatedLowerAlphanumeric(
        _ bytes: Substring.UTF8View,
        isSeparatorRun: ([UInt8]) -> Bool
    ) -> Bool {
        var separator: [UInt8] = []
        var sawAlphanumeric = false
        for byte in bytes {
            if isLowerAlphanumeric(byte) {
                if !separator.isEmpty {
                    guard sawAlphanumeric, isSeparatorRun(separator) else { return false }
                    separator.removeAll(keepingCapacity: true)
                }
                sawAlphanumeric = true
            } else {
                separator.append(byte)
            }
        }
        return sawAlphanumeric && separator.isEmpty
    }
}
