public import Foundation
public import Planning
public import Postgres
import Store

/// `callwindow preview`'s planning: read-only, with the planner the daemon uses. Capacity is
/// shared by all campaigns of a client account, so each shown campaign's account is planned as
/// a whole and only the requested campaigns are shown.
public enum AccountPreview {
    /// Which campaigns to show.
    public enum Selection: Sendable {
        /// These campaign ids.
        case campaigns([Int64])
        /// Every campaign of this client account.
        case client(UUID)
        /// Every campaign.
        case all
    }

    /// Plans `selection` as of `now` in one READ ONLY transaction on `database`.
    public static func report(
        _ selection: Selection, capacity: Capacity, now: Int64, database: PostgresConfiguration
    ) async throws -> PlanReport {
        let connection = try await PostgresConnection.connect(database)
        do {
            let report = try await connection.transaction(readOnly: true) { connection in
                try await plan(selection, capacity: capacity, now: now, on: connection)
            }
            await connection.close()
            return report
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Reads the campaigns, counts their records, and plans their accounts on `connection`.
    public static func plan(
        _ selection: Selection, capacity: Capacity, now: Int64, on connection: PostgresConnection
    ) async throws -> PlanReport {
        let store = CampaignStore()
        let requested: [StoredCampaign] = switch selection {
        case .campaigns(let ids): try await store.campaigns(.ids(ids), on: connection)
        case .client(let client): try await store.campaigns(.clients([client]), on: connection)
        case .all: try await store.campaigns(.all, on: connection)
        }
        let clients = Array(Set(requested.map(\.campaign.clientAccountID)))
        let everything = clients.isEmpty ? [] : try await store.campaigns(.clients(clients), on: connection)
        let naming: FieldNaming = capacity.transport == .v1 ? .v1 : .v2
        var inputs: [(campaign: Campaign, counts: RecordCounts)] = []
        for stored in everything {
            inputs.append((stored.campaign, try await store.recordCounts(of: stored, naming: naming, on: connection)))
        }
        var report = PlanReport.build(campaigns: inputs, capacity: capacity, now: now)
        let shown = Set(requested.map(\.campaign.id))
        report.campaigns.removeAll { !shown.contains($0.id) }
        return report
    }
}
