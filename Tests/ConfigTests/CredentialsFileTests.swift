import Config
import Foundation
import Testing

@Suite("the credentials file (credentials_file)")
struct CredentialsFileTests {
    static let first = "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10"
    static let second = "7a2d4b63-1e8f-4d2c-8b66-4c3e9f8a5b21"
    static let keyID = "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0"
    /// A key no message may show (a number, too: YAML would read it as one).
    static let secret = "s3cr3t-2d0f6a1b8c4e"

    /// A file in a folder of its own holding `text`, of `mode`; returns its path.
    static func file(_ text: String, mode: Int = 0o600, name: String = "credentials.yaml") throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cw-credentials-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    static let good = """
        # two accounts
        \(first):
          key_id: \(keyID)
          api_key: "\(secret)"
        \(second): {key_id: 2e0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d2, api_key: 12345}
        """

    /// A configuration serving `clients` with their keys from `credentials`.
    static func configuration(_ credentials: String, clients: [String] = [first, second], environment: [String: String] = [:]) throws -> Configuration {
        let list = clients.map { "{client_account_id: \($0)}" }.joined(separator: ", ")
        return try Configuration.parse(yaml: "credentials_file: \(credentials)\nclients: [\(list)]", environment: environment)
    }

    @Test("a file of mode 0600 gives every configured client its key id and key, in the order of clients:; a number is read as text")
    func loads() throws {
        let path = try Self.file(Self.good)
        let credentials = try Self.configuration(path, clients: [Self.second, Self.first]).credentials(environment: [:])
        #expect(credentials.map(\.clientAccountID) == [UUID(uuidString: Self.second)!, UUID(uuidString: Self.first)!])
        #expect(credentials[1].credential == AccountCredential(keyID: UUID(uuidString: Self.keyID)!, apiKey: Self.secret))
        #expect(credentials[0].credential.apiKey == "12345")
        // Printing a credential shows its key id only.
        #expect(!"\(credentials[1].credential)".contains(Self.secret))
        #expect(!String(reflecting: credentials[1].credential).contains(Self.secret))
        #expect(try Self.configuration(path).credentials(only: UUID(uuidString: Self.second)!, environment: [:]).count == 1)
    }

    @Test("any mode but 0600 is refused, naming the path and the mode", arguments: [0o644, 0o640, 0o400, 0o700, 0o606])
    func mode(_ mode: Int) throws {
        let path = try Self.file(Self.good, mode: mode)
        let error = #expect(throws: ConfigurationError.self) { try CredentialsFile.load(path: path) }
        let octal = "0" + String(mode, radix: 8)
        #expect(error?.message == "the credentials file \(path) has mode \(octal); it must be 0600 (read and written by its owner only): chmod 600 \(path)")
    }

    @Test("a missing file and a folder are clear errors naming the path")
    func missing() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cw-none-\(UUID().uuidString).yaml").path
        let error = #expect(throws: ConfigurationError.self) { try Self.configuration(path).credentials(environment: [:]) }
        #expect(error?.message == "the credentials file \(path) does not exist (credentials_file in the configuration)")
        let folder = URL(fileURLWithPath: try Self.file("")).deletingLastPathComponent().path
        let notFile = #expect(throws: ConfigurationError.self) { try CredentialsFile.load(path: folder) }
        #expect(notFile?.message == "the credentials file \(folder) is not a regular file")
    }

    @Test("bad YAML and bad entries say where (line, column), and never show the file's text", arguments: [
        ("\(first):\n  key_id: \(keyID)\n  api_key: \"\(secret)\n", "credentials.yaml is not valid YAML: line 4, column 1: found unexpected end of stream"),
        ("\(first):\n  key_id: \(keyID)\n   api_key: \(secret)\n", "credentials.yaml is not valid YAML: line 3, column 11: mapping values are not allowed in this context"),
        ("- \(first)\n", "line 1: expected a mapping of client_account_id to {key_id, api_key}"),
        ("\(secret): {key_id: \(keyID), api_key: x}\n", "line 1: a key is not a client_account_id (a uuid)"),
        ("\(first): {key_id: \(secret), api_key: x}\n", "line 1: client account \(first): key_id must be the API key id (a uuid)"),
        ("\(first): {key_id: \(keyID)}\n", "line 1: client account \(first) has no api_key"),
        ("\(first): {api_key: \(secret)}\n", "line 1: client account \(first) has no key_id"),
        ("\(first): {key_id: \(keyID), api_key: \"\"}\n", "line 1: client account \(first): api_key must be the API key (text)"),
        ("\(first): {key_id: \(keyID), api_key: [\(secret)]}\n", "line 1: client account \(first): api_key must be the API key (text)"),
        ("\(first):\n  key_id: \(keyID)\n  api_key: x\n  \(secret): y\n", "line 4: client account \(first): unknown key (known keys: api_key, key_id)"),
        ("\(first): \(secret)\n", "line 1: client account \(first) must map to key_id and api_key"),
        ("\(first): {key_id: \(keyID), api_key: \(secret)}\n\(first): {key_id: \(keyID), api_key: \(secret)}\n", "client account \(first) is listed twice"),
        ("\(first): {key_id: \(keyID), api_key: \(secret)}\n\(first.uppercased()): {key_id: \(keyID), api_key: y}\n",
         "line 2: client account \(first) is listed twice (first on line 1)"),
        ("\(first): {key_id: \(keyID), api_key: \(secret), api_key: y}\n", "api_key is listed twice"),
    ])
    func syntax(text: String, message: String) throws {
        let path = try Self.file(text)
        let error = #expect(throws: ConfigurationError.self) { try CredentialsFile.load(path: path) }
        let description = error?.description ?? ""
        #expect(description.hasPrefix("the credentials file \(path)"), "got: \(description)")
        #expect(description.contains(message), "got: \(description)")
        #expect(!description.contains(Self.secret), "no message shows the file's text: \(description)")
    }

    @Test("a configured client without an entry, and an entry for an account not configured, are errors naming the account")
    func accounts() throws {
        let path = try Self.file(Self.good)
        let third = "8b3e5c74-2f9a-4e3d-9c77-5d4fa09b6c32"
        let missing = #expect(throws: ConfigurationError.self) {
            try Self.configuration(path, clients: [Self.first, Self.second, third]).credentials(environment: [:])
        }
        #expect(missing?.message == "client \(third) has no entry in the credentials file \(path)")
        let unknown = #expect(throws: ConfigurationError.self) { try Self.configuration(path, clients: [Self.first]).credentials(environment: [:]) }
        #expect(unknown?.message == "the credentials file \(path) line 5: client account \(Self.second) is not in the configuration's clients:")
        #expect(!(unknown?.message.contains(Self.secret) ?? true))
    }

    @Test("a relative path is relative to the configuration file's folder; from the environment, to the working directory")
    func relativePath() throws {
        let credentials = try Self.file(Self.good)
        let folder = URL(fileURLWithPath: credentials).deletingLastPathComponent()
        let config = folder.appendingPathComponent("callwindow.yaml").path
        try "credentials_file: credentials.yaml\nclients: [{client_account_id: \(Self.first)}, {client_account_id: \(Self.second)}]\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let loaded = try Configuration.load(path: config, environment: [:])
        #expect(loaded.credentialsFile == credentials)
        #expect(try loaded.credentials(environment: [:]).count == 2)
        let overridden = try Configuration.load(path: config, environment: ["CALLWINDOW_CREDENTIALS_FILE": "elsewhere.yaml"])
        #expect(overridden.credentialsFile == "elsewhere.yaml")
    }

    @Test("with a credentials file, a client that still names environment variables is refused; without one, the variables still work")
    func environmentVariables() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try Configuration.parse(yaml: "credentials_file: /etc/cw.yaml\nclients: [{client_account_id: \(Self.first), key_id_env: K, api_key_env: A}]")
        }
        #expect(error?.message.contains("clients[0] names key_id_env or api_key_env, but credentials_file is set") == true, "got: \(error?.message ?? "")")
        let configuration = try Configuration.parse(yaml: "clients: [{client_account_id: \(Self.first), key_id_env: K, api_key_env: A}]")
        let credentials = try configuration.credentials(environment: ["K": Self.keyID, "A": Self.secret])
        #expect(credentials.map(\.credential) == [AccountCredential(keyID: UUID(uuidString: Self.keyID)!, apiKey: Self.secret)])
        let missing = #expect(throws: ConfigurationError.self) { try configuration.credentials(environment: ["K": Self.keyID]) }
        #expect(missing?.message == "client \(Self.first): environment variable A must hold the API key")
    }

    @Test("the settings a reload does not apply are named by section")
    func sectionsChanged() throws {
        let before = try Configuration.parse(yaml: "clients: [{client_account_id: \(Self.first)}]")
        var after = before
        after.clients = []
        after.credentialsFile = "/x"
        #expect(before.sectionsChanged(in: after).isEmpty)
        after.tokens.max = 3
        after.log.level = "debug"
        #expect(before.sectionsChanged(in: after) == ["tokens", "log"])
    }
}
