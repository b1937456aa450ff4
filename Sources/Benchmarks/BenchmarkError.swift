/// A benchmark that could not run or finish, in one sentence.
public struct BenchmarkError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) {
        self.description = description
    }
}
