import PullSketchCore
import Testing

@Suite struct NameValidationTests {
    @Test(arguments: ["app", "team/app", "a/b/c", "my-org/my_app", "a.b__c--d/e", "0/9", "library/ubuntu"])
    func acceptsRepositoriesOfTheGrammar(_ name: String) throws {
        #expect(try RepositoryName(name).value == name)
    }

    @Test(arguments: [
        "", "Team/app", "team//app", "/app", "app/", "team/../app", "team/./app", "-app", "app-", "a..b",
        "a___b", "a._b", "tëam/app", "team/app ", "team:app", String(repeating: "a", count: 256),
    ])
    func rejectsRepositoriesOutsideTheGrammar(_ name: String) {
        #expect(throws: ValidationError.self) { try RepositoryName(name) }
    }

    @Test(arguments: ["latest", "v1.2.3", "_hidden", "A-b_c.D", String(repeating: "t", count: 128)])
    func acceptsTagsOfTheGrammar(_ tag: String) throws {
        #expect(try TagName(tag).value == tag)
    }

    @Test(arguments: ["", ".hidden", "-v1", "v1/2", "v1:2", "tág", String(repeating: "t", count: 129)])
    func rejectsTagsOutsideTheGrammar(_ tag: String) {
        #expect(throws: ValidationError.self) { try TagName(tag) }
    }

    @Test(arguments: [
        "sha256:" + String(repeating: "a", count: 64),
        "sha512:" + String(repeating: "0", count: 128),
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    ])
    func acceptsDigestsOfTheGrammar(_ digest: String) throws {
        #expect(try Digest(digest).value == digest)
    }

    @Test(arguments: [
        "", "sha256", "sha256:", ":abc", "sha256:" + String(repeating: "A", count: 64),
        "sha256:" + String(repeating: "a", count: 63), "sha512:" + String(repeating: "a", count: 64),
        "SHA256:" + String(repeating: "a", count: 64), "sha256:" + String(repeating: "g", count: 64),
        "md5:abc/def", "md5:abç", "sha+:abc",
    ])
    func rejectsDigestsOutsideTheGrammar(_ digest: String) {
        #expect(throws: ValidationError.self) { try Digest(digest) }
    }

    /// Every byte of a sha256 digest's hex part replaced by every printable ASCII byte and a few
    /// others: valid exactly when it stays lowercase hex. Plus prefixes one byte off.
    @Test func aSHA256DigestIsValidExactlyWhenItsHexIsLowercaseHex() {
        let hex = Array("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".utf8)
        let lowercaseHex = Set("0123456789abcdef".utf8)
        for position in hex.indices {
            for byte in Array(0x20...0x7E) + [0x00, 0x0A, 0x80, 0xFF] as [UInt8] {
                var mutated = hex
                mutated[position] = byte
                let digest = "sha256:" + String(decoding: mutated, as: UTF8.self)
                #expect(((try? Digest(digest)) != nil) == lowercaseHex.contains(byte), "byte \(byte) at \(position)")
            }
        }
        let encoded = String(decoding: hex, as: UTF8.self)
        for invalid in ["shA256:", "sha256;", "sha256_", "Sha256:"] {
            #expect(throws: ValidationError.self) { try Digest(invalid + encoded) }
        }
        #expect((try? Digest("sha257:" + encoded)) != nil)  // another algorithm, accepted by grammar
        #expect(throws: ValidationError.self) { try Digest("sha256:" + encoded.dropLast()) }
        #expect(throws: ValidationError.self) { try Digest("sha256:" + encoded + "0") }
    }

    @Test func errorsNameTheFieldAndTheReason() {
        do {
            _ = try RepositoryName("Team/app")
            Issue.record("an uppercase repository was accepted")
        } catch {
            #expect(error.field == .repository)
            #expect(error.description.contains("Team"))
        }
    }
}
