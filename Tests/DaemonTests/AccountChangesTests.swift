import CallRecordAPI
import Daemon
import Foundation
import Testing

@Suite("What a reload changes in the accounts served")
struct AccountChangesTests {
    @Test("accounts added, removed and rekeyed (a new key id or a new key), in their configured order")
    func between() {
        let (a, b, c, d) = (UUID(), UUID(), UUID(), UUID())
        let key = APIKey(keyID: UUID(), apiKey: "k1")
        let old = [(a, key), (b, key), (c, key)]
        let new = [(d, key), (c, APIKey(keyID: key.keyID, apiKey: "k2")), (a, key)]
        let changes = AccountChanges.between(old, new)
        #expect(changes.added == [d])
        #expect(changes.removed == [b])
        #expect(changes.rekeyed == [c])
        #expect(changes.unchanged == 1)
        #expect(!changes.isEmpty)
        #expect(AccountChanges.between(old, old).isEmpty)
        #expect(AccountChanges.between(old, [(a, APIKey(keyID: UUID(), apiKey: "k1")), (b, key), (c, key)]).rekeyed == [a])
    }
}
