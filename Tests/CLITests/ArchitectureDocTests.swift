import Foundation
import TestSupport
import Testing

/// docs/ARCHITECTURE.md's module map against Package.swift: every target (but the test targets)
/// is in the map with exactly the project modules it depends on, and nothing else is.
@Suite("docs/ARCHITECTURE.md matches Package.swift")
struct ArchitectureDocTests {
    @Test("the module map lists every target with its project dependencies")
    func moduleMapMatchesThePackage() throws {
        let root = TestDatabase.packageRoot
        let package = try Self.targets(inPackage: String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8))
        let map = try Self.moduleMap(String(contentsOf: root.appendingPathComponent("docs/ARCHITECTURE.md"), encoding: .utf8))
        #expect(!package.isEmpty && !map.isEmpty)
        #expect(Set(map.keys) == Set(package.keys), "modules only in the map: \(Set(map.keys).subtracting(package.keys).sorted()); only in Package.swift: \(Set(package.keys).subtracting(map.keys).sorted())")
        for (name, dependencies) in package.sorted(by: { $0.key < $1.key }) {
            let projectDependencies = dependencies.intersection(package.keys)
            #expect(map[name] == projectDependencies, "\(name): the map says \(map[name]?.sorted() ?? []), Package.swift says \(projectDependencies.sorted())")
        }
    }

    /// Non-test targets of a Package.swift and the target names (string literals, not
    /// `.product(…)`) in their `dependencies:` lists.
    static func targets(inPackage text: String) throws -> [String: Set<String>] {
        let kinds = [".target(", ".executableTarget(", ".systemLibrary("]
        var result: [String: Set<String>] = [:]
        let declaration = try Regex(#"\.(target|executableTarget|systemLibrary|testTarget)\("#)
        let starts = text.ranges(of: declaration).map(\.lowerBound)
        for (index, start) in starts.enumerated() {
            let end = index + 1 < starts.count ? starts[index + 1] : text.endIndex
            let chunk = String(text[start..<end])
            guard kinds.contains(where: { chunk.hasPrefix($0) }) else { continue }
            guard let name = chunk.firstMatch(of: #/name:\s*"([^"]+)"/#)?.1 else { continue }
            var dependencies = Set<String>()
            if let list = chunk.firstMatch(of: #/dependencies:\s*\[([\s\S]*?)\]\s*,?\s*(path|swiftSettings|providers|pkgConfig|\))/#)?.1 {
                let withoutProducts = String(list).replacing(#/\.product\([^)]*\)/#, with: "")
                for match in withoutProducts.matches(of: #/"([^"]+)"/#) { dependencies.insert(String(match.1)) }
            }
            result[String(name)] = dependencies
        }
        return result
    }

    /// The rows of the "Module map" table: module → the modules in its "depends on" column.
    static func moduleMap(_ text: String) throws -> [String: Set<String>] {
        guard let section = text.range(of: "## Module map") else { return [:] }
        var result: [String: Set<String>] = [:]
        for line in text[section.upperBound...].split(separator: "\n") {
            if line.hasPrefix("## ") { break }
            guard line.hasPrefix("| `") else { continue }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4 else { continue }
            let name = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            let dependencies = cells[2].matches(of: #/`([^`]+)`/#).map { String($0.1) }
            result[name] = Set(dependencies)
        }
        return result
    }
}
