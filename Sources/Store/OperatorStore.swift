public import Planning
public import Postgres

/// Why an operator's status change was not made.
public enum OperatorRefusal: Error, Sendable, Equatable {
    /// The database role may not call `callwindow.operator_set_status` (SQLSTATE 42501): nobody
    /// granted it `callwindow_operator`.
    case notGranted
    /// The campaign does not exist.
    case noCampaign
    /// The campaign table refused the change (a cancelled campaign stays cancelled), in the
    /// schema's own words.
    case refused(String)
}

/// The dashboard's operator actions (`http.actions: true`): a campaign's status changed through
/// `callwindow.operator_set_status` (sql/007_operator.sql), which runs as the schema owner and is
/// granted only to `callwindow_operator`; the app role itself still cannot write campaigns.
public struct OperatorStore: Sendable {
    /// A stateless store; every call takes the connection it runs on.
    public init() {}

    /// Sets campaign `id`'s status to `status` and returns the one it had before. Throws
    /// `OperatorRefusal` when the role lacks the grant, the campaign is missing, or the schema
    /// refuses the change.
    @discardableResult
    public func setStatus(of id: Int64, to status: CampaignStatus, on connection: PostgresConnection) async throws -> CampaignStatus? {
        do {
            let old: String = try await connection.query(
                "SELECT callwindow.operator_set_status($1, $2) AS old", id, status.rawValue)[0].decode("old")
            return CampaignStatus(rawValue: old)
        } catch let error as PostgresError where error.sqlState == "42501" {
            throw OperatorRefusal.notGranted
        } catch let error as PostgresError where error.sqlState == "P0002" {
            throw OperatorRefusal.noCampaign
        } catch let error as PostgresError where error.sqlState == "23514" {
            throw OperatorRefusal.refused(error.message)
        }
    }
}
