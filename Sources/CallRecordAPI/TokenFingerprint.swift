import Crypto

/// The one way a token is identified outside the token store: logs, audit rows, the sandbox's
/// record file and stats all use it, so the same token reads the same everywhere.
public enum TokenFingerprint {
    /// Number of hex characters kept from the SHA-256 digest.
    public static let length = 12

    /// The first 12 lowercase hex characters of the SHA-256 of the token string (UTF-8).
    public static func of(_ token: String) -> String {
        let digest = SHA256.hash(data: Array(token.utf8))
        var hex = ""
        hex.reserveCapacity(length)
        let digits = Array("0123456789abcdef".unicodeScalars)
        for byte in digest.prefix(length / 2) {
            hex.unicodeScalars.append(digits[Int(byte >> 4)])
            hex.unicodeScalars.append(digits[Int(byte & 0x0F)])
        }
        return hex
    }
}
