import Foundation
@testable import Postgres
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("sever() reaches only its own connection's socket", .timeLimit(.minutes(1)))
struct SeverDescriptorTests {
    @Test("after libpq dropped a connection the server ended, its descriptor number reused elsewhere is not shut down by a late sever()")
    func aLateSeverLeavesAReusedDescriptorAlone() async throws {
        let victim = try await TestDatabase.connect()
        let descriptor = await victim.libpqSocket
        #expect(descriptor >= 0)
        try await closing(try await TestDatabase.connect()) { admin throws in
            _ = try await admin.query("SELECT pg_terminate_backend($1)", victim.backendPID)
        }
        // The next statement finds the server gone, and libpq closes its descriptor.
        try await waitUntil(timeout: .seconds(30), "libpq to drop the terminated connection") {
            _ = try? await victim.query("SELECT 1")
            return await victim.libpqSocket == -1
        }
        // Take descriptors until the freed number comes back (the lowest free one is handed out
        // first; another test's socket may hold it for a moment, so a bounded number of tries).
        var pairs: [[Int32]] = []
        defer { for pair in pairs { for end in pair { _ = Glibc.close(end) } } }
        var reused: [Int32]?
        for _ in 0..<4_000 where reused == nil {
            var ends: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { break }
            pairs.append(ends)
            if ends[0] == descriptor { reused = ends } else if ends[1] == descriptor { reused = [ends[1], ends[0]] }
        }
        let pair = try #require(reused, "descriptor \(descriptor) was not handed out again")
        // A sever now (an answer deadline or a cancel limit firing late) must not touch it.
        victim.sever()
        var byte: UInt8 = 7
        #expect(send(pair[1], &byte, 1, Int32(MSG_NOSIGNAL)) == 1, "the reused descriptor's peer cannot write to it")
        var received: UInt8 = 0
        let count = recv(pair[0], &received, 1, Int32(MSG_DONTWAIT))
        #expect(count == 1 && received == 7, "the reused descriptor was shut down: recv returned \(count)")
        await victim.close()
    }
}
