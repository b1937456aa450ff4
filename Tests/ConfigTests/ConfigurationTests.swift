import Config
import Planning
import Foundation
import Testing

@Suite("config/callwindow.yaml")
struct ConfigurationTests {
    @Test("the shipped file decodes and equals the documented defaults plus its client")
    func shippedFile() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/callwindow.yaml").path
        let configuration = try Configuration.load(path: path, environment: [:])
        var expected = Configuration()
        expected.database.url = configuration.database.url
        expected.clients = configuration.clients
        #expect(configuration == expected)
        #expect(configuration.clients.count == 1)
    }

    @Test("keys override defaults; nested mappings merge")
    func overrides() throws {
        let configuration = try Configuration.parse(yaml: """
            database: {url: "postgres://a@b/c"}
            api: {transport: batch}
            tokens: {max: 4}
            clients:
              - client_account_id: 6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10
                key_id_env: ACME_KEY_ID
                api_key_env: ACME_API_KEY
            """)
        #expect(configuration.database.url == "postgres://a@b/c")
        #expect(configuration.database.poolSize == 8)
        #expect(configuration.api.transport == .batch)
        #expect(configuration.api.baseURL == "http://127.0.0.1:8089")
        #expect(configuration.tokens.max == 4)
        #expect(configuration.clients == [Configuration.Client(clientAccountID: "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10", keyIDEnv: "ACME_KEY_ID", apiKeyEnv: "ACME_API_KEY")])
    }

    @Test("every scalar key is overridable by CALLWINDOW_<PATH>")
    func environment() throws {
        #expect(Configuration.environmentName(for: "database.url") == "CALLWINDOW_DATABASE_URL")
        let configuration = try Configuration.parse(yaml: "tokens: {max: 4}", environment: [
            "CALLWINDOW_DATABASE_URL": "postgres://env@host/db",
            "CALLWINDOW_TOKENS_MAX": "6",
            "CALLWINDOW_SCHEDULER_UTILISATION": "0.9",
            "CALLWINDOW_HTTP_PORT": "0",
        ])
        #expect(configuration.database.url == "postgres://env@host/db")
        #expect(configuration.tokens.max == 6)
        #expect(configuration.scheduler.utilisation == 0.9)
        #expect(configuration.http.port == 0)
    }

    @Test("unknown keys and bad values are errors naming the key", arguments: [
        ("tokens: {maxx: 3}", "unknown key tokens.maxx"),
        ("databse: {url: x}", "unknown key databse"),
        ("tokens: {max: lots}", "bad value for tokens.max: expected a whole number"),
        ("api: {transport: smoke}", "api.transport \"smoke\" is not a transport"),
        ("tokens: {max: 40}", "tokens.max 40 cannot be sustained"),
        ("clients: [{client_account_id: nope}]", "clients[0].client_account_id \"nope\" is not a uuid"),
        ("clients: [{client_account_id: 6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10, secret: x}]", "unknown key clients[0].secret"),
        ("api: 3", "api must be a mapping"),
        ("log: {level: loud}", "log.level \"loud\" is not a level"),
        ("scheduler: {utilisation: 1.5}", "scheduler.utilisation 1.5 must be above 0 and at most 1"),
        ("- a\n- b", "must be a mapping of keys"),
        ("http: {host: 0.0.0.0}", "http.host 0.0.0.0 is not a loopback address: set http.auth_token_env"),
        ("http: {host: 0.0.0.0, auth_token_env: \"s3cr3t token\"}", "http.auth_token_env must be the name of an environment variable"),
    ])
    func errors(yaml: String, message: String) throws {
        let error = #expect(throws: ConfigurationError.self) { try Configuration.parse(yaml: yaml) }
        #expect(error?.description.contains(message) == true, "got: \(error?.description ?? "nothing")")
    }

    @Test("http.auth_token_env decodes; a loopback host needs none, any other host needs it")
    func authTokenEnv() throws {
        #expect(try Configuration.parse(yaml: "").http.authTokenEnv == "")
        #expect(try Configuration.parse(yaml: "http: {host: localhost}").http.host == "localhost")
        let open = try Configuration.parse(yaml: "http: {host: 0.0.0.0, auth_token_env: CW_DASH_TOKEN}")
        #expect(open.http.authTokenEnv == "CW_DASH_TOKEN")
        #expect(Configuration.HTTP.isLoopback("127.0.0.1") && Configuration.HTTP.isLoopback("::1"))
        #expect(!Configuration.HTTP.isLoopback("0.0.0.0") && !Configuration.HTTP.isLoopback("10.1.2.3"))
        #expect(!Configuration.HTTP.isLoopback("127.example.com") && Configuration.HTTP.isLoopback("127.0.0.53"), "a name starting with 127. is not a loopback address")
    }

    @Test("a bad environment value names the variable and the key")
    func badEnvironment() {
        let error = #expect(throws: ConfigurationError.self) {
            try Configuration.parse(yaml: "", environment: ["CALLWINDOW_TOKENS_MAX": "many"])
        }
        #expect(error?.description == "CALLWINDOW_TOKENS_MAX=many is not a whole number for tokens.max")
    }

    @Test("a well-typed but invalid environment value is blamed on its variable, not on the file")
    func invalidEnvironmentValue() {
        let error = #expect(throws: ConfigurationError.self) {
            try Configuration.parse(yaml: "api: {transport: v1}", environment: ["CALLWINDOW_API_TRANSPORT": "v3"])
        }
        #expect(error?.description.contains("api.transport \"v3\" is not a transport") == true, "got: \(error?.description ?? "nothing")")
        #expect(error?.description.hasSuffix("(the value comes from the environment variable CALLWINDOW_API_TRANSPORT)") == true)
    }
}
