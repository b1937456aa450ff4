import Foundation
@testable import Postgres
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("sever() reaches only its own connection's socket", .timeLimit(.minutes(1)))
struct SeverDescriptorTests {
    /// The inode of the socket behind `descriptor` (sockets have one each), nil if it is not open.
    static func socketInode(_ descriptor: Int32) -> UInt? {
        var status = stat()
        guard descriptor >= 0, fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { return nil }
        return UInt(status.st_ino)
    }

    @Test("after libpq dropped a connection the server ended (closing its descriptor, whose number anything may reuse), sever() still targets that connection's own socket")
    func severTargetsItsOwnSocketAfterLibpqDroppedIt() async throws {
        let victim = try await TestDatabase.connect()
        let descriptor = await victim.libpqSocket
        let inode = try #require(Self.socketInode(descriptor))
        #expect(Self.socketInode(victim.severDescriptor) == inode, "sever() aims at the connection's socket")
        try await closing(try await TestDatabase.connect()) { admin throws in
            _ = try await admin.query("SELECT pg_terminate_backend($1)", victim.backendPID)
        }
        // The next statement finds the server gone, and libpq closes its descriptor: from now on
        // the number `descriptor` is free for any socket or file of the process.
        try await waitUntil(timeout: .seconds(30), "libpq to drop the terminated connection") {
            _ = try? await victim.query("SELECT 1")
            return await victim.libpqSocket == -1
        }
        // What a late sever (an answer deadline or a cancel limit firing now) would shut down
        // is still the same socket, not whatever holds the freed number.
        #expect(Self.socketInode(victim.severDescriptor) == inode,
                "sever() would shut down descriptor \(victim.severDescriptor), no longer this connection's socket")
        victim.sever()
        await victim.close()
        #expect(victim.severDescriptor == -1, "closed: the duplicate is closed too")
    }
}
