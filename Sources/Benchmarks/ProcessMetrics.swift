import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// User + system CPU seconds of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident set size of this process in MB (Linux reports kilobytes).
func peakRSSMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// One progress line on standard error.
func progress(_ line: String) {
    FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
}

/// CPU seconds (user + system) of the PostgreSQL server whose data directory is `dataDirectory`:
/// the postmaster, its live children, and the children it has reaped.
func postgresCPUSeconds(dataDirectory: String) -> Double {
    guard let pidText = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
          let postmaster = pidText.split(separator: "\n").first.flatMap({ Int($0) }) else { return 0 }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = 0.0
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
        guard let pid = Int(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        // Fields after "(comm)": state ppid … utime(14) stime(15) cutime(16) cstime(17).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 15, let ppid = Int(fields[1]) else { continue }
        guard pid == postmaster || ppid == postmaster else { continue }
        let utime = Double(fields[11]) ?? 0, stime = Double(fields[12]) ?? 0
        let cutime = pid == postmaster ? Double(fields[13]) ?? 0 : 0
        let cstime = pid == postmaster ? Double(fields[14]) ?? 0 : 0
        total += (utime + stime + cutime + cstime) / ticks
    }
    return total
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/PID/stat`; 0 once it is gone.
func processCPUSeconds(pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12 else { return 0 }
    return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
