/// A minimal double-ended queue of indices (front removals without O(n) shifts).
struct Deque {
    private var storage: [Int]
    private var head = 0

    init(_ elements: [Int]) {
        storage = elements
    }

    var isEmpty: Bool { head >= storage.count }
    var count: Int { storage.count - head }
    var first: Int? { isEmpty ? nil : storage[head] }

    @discardableResult
    mutating func removeFirst() -> Int {
        let value = storage[head]
        head += 1
        if head > 4_096, head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return value
    }

    mutating func append(_ value: Int) {
        storage.append(value)
    }

    /// The elements, front first.
    var elements: ArraySlice<Int> { storage[head...] }

    mutating func removeAll(where shouldRemove: (Int) -> Bool) {
        storage = storage[head...].filter { !shouldRemove($0) }
        head = 0
    }

    mutating func prepend(_ value: Int) {
        if head > 0 {
            head -= 1
            storage[head] = value
        } else {
            storage.insert(value, at: 0)
        }
    }
}
