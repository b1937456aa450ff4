@testable import Scheduler
import Testing

@Suite("What a lease renewal counts as lost")
struct LeaseRenewerTests {
    @Test("a record settled and written while the renewal ran is not a lost lease; one still out and not held is")
    func settledMeanwhileIsExcused() {
        let asked: [Int64] = Array(1...10)
        // Every lease held: nothing lost, whatever settled meanwhile.
        #expect(LeaseRenewer.lost(asked: asked, held: 10, stillOut: asked) == 0)
        #expect(LeaseRenewer.lost(asked: asked, held: 10, stillOut: []) == 0)
        // Record 3 was settled after the renewal took its list, and its result written before the
        // renewal's statement read it: not held, but not lost either.
        #expect(LeaseRenewer.lost(asked: asked, held: 9, stillOut: asked.filter { $0 != 3 }) == 0)
        // Another record, still out, was not held: rescued by another instance.
        #expect(LeaseRenewer.lost(asked: asked, held: 8, stillOut: asked.filter { $0 != 3 }) == 1)
        // Nothing settled meanwhile: every lease not held is lost.
        #expect(LeaseRenewer.lost(asked: asked, held: 7, stillOut: asked) == 3)
        // Settled meanwhile and still held (not yet written): the count is never negative.
        #expect(LeaseRenewer.lost(asked: asked, held: 10, stillOut: [1, 2]) == 0)
    }
}
