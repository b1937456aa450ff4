public import Foundation

extension Configuration {
    /// Every configured client's API key pair, in the order of `clients:` (only `only`'s, when
    /// given): from the credentials file when `credentials_file` is set, else from the
    /// environment variables each client names. The file must list exactly the configured
    /// accounts: one missing, or one the configuration does not know (a typo, an account moved
    /// to another instance's list), is an error naming the account and the file's line. No
    /// message holds a key.
    public func credentials(
        only: UUID? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> [(clientAccountID: UUID, credential: AccountCredential)] {
        let configured = clients.compactMap { UUID(uuidString: $0.clientAccountID) }
        var credentials: [(clientAccountID: UUID, credential: AccountCredential)] = []
        if credentialsFile.isEmpty {
            for (client, id) in zip(clients, configured) where only == nil || only == id {
                guard let keyID = environment[client.keyIDEnv].flatMap(UUID.init(uuidString:)) else {
                    throw ConfigurationError("client \(id.lowercased): environment variable \(client.keyIDEnv) must hold the API key id (a uuid)")
                }
                guard let apiKey = environment[client.apiKeyEnv], !apiKey.isEmpty else {
                    throw ConfigurationError("client \(id.lowercased): environment variable \(client.apiKeyEnv) must hold the API key")
                }
                credentials.append((id, AccountCredential(keyID: keyID, apiKey: apiKey)))
            }
        } else {
            let file = try CredentialsFile.load(path: credentialsFile)
            let known = Set(configured)
            if let (stray, entry) = file.entries.filter({ !known.contains($0.key) }).min(by: { $0.value.line < $1.value.line }) {
                throw ConfigurationError(
                    "the credentials file \(credentialsFile) line \(entry.line): client account \(stray.lowercased) is not in the configuration's clients:",
                    key: "credentials_file")
            }
            for id in configured where only == nil || only == id {
                guard let entry = file.entries[id] else {
                    throw ConfigurationError("client \(id.lowercased) has no entry in the credentials file \(credentialsFile)", key: "credentials_file")
                }
                credentials.append((id, entry.credential))
            }
        }
        if let only, credentials.isEmpty {
            throw ConfigurationError("client \(only.lowercased) is not in the configuration's clients:")
        }
        return credentials
    }
}

extension UUID {
    /// The account id as the logs and the database write it.
    var lowercased: String { uuidString.lowercased() }
}

extension Configuration {
    /// The sections that differ in `other`, apart from what a reload applies (`clients` and
    /// `credentials_file`, the accounts and their keys): the daemon names them as taking effect
    /// only at a restart.
    public func sectionsChanged(in other: Configuration) -> [String] {
        var changed: [String] = []
        if database != other.database { changed.append("database") }
        if api != other.api { changed.append("api") }
        if tokens != other.tokens { changed.append("tokens") }
        if scheduler != other.scheduler { changed.append("scheduler") }
        if http != other.http { changed.append("http") }
        if log != other.log { changed.append("log") }
        return changed
    }
}
