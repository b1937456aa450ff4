import Foundation
import Postgres
import Testing
import TestSupport

/// `callwindow erase`, the real binary, against the shared test database.
@Suite(.timeLimit(.minutes(2))) struct EraseCommandTests {
    @Test func erasesWithAKeyAndRefusesWithoutOne() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["CALLWINDOW_TEST_DATABASE_URL"])
        try await withMigratedDatabase { connection in
            let client = UUID()
            let label = UUID()
            try await CampaignSeed.label(client: client, label: label, on: connection)
            var seed = CampaignSeed(client: client, label: label, startsAt: 1_900_000_000_000, endsAt: 1_900_003_600_000)
            seed.receivers = 2
            let campaign = try await seed.insert(on: connection)
            let arguments = ["erase", "--client", client.uuidString, "--phone", "+49 151 0000 0002", "--database-url", url]

            let missing = try await run(callwindowBinary, arguments, environment: ["CALLWINDOW_ERASURE_KEY": ""])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("CALLWINDOW_ERASURE_KEY"), "\(missing.stderr)")

            let key = Data(repeating: 3, count: 32).base64EncodedString()
            let erased = try await run(callwindowBinary, arguments, environment: ["CALLWINDOW_ERASURE_KEY": key])
            #expect(erased.status == 0, "\(erased.stderr)")
            #expect(erased.stdout.contains("campaign_receivers: 1"), "\(erased.stdout)")
            let phones = try await connection.query(
                "SELECT phone FROM callwindow.campaign_receivers WHERE campaign_id = $1 ORDER BY phone", campaign).map { try $0.decode("phone", as: String.self) }
            #expect(phones.count == 2)
            #expect(phones.contains("4915100000001"))
            #expect(phones.contains { $0.hasPrefix("erased-") })
            #expect(!phones.contains("4915100000002"))
        }
    }
}
