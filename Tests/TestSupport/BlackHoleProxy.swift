import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on 127.0.0.1 in front of one upstream address that a test can `cut()`: from then
/// on, what either side sends is read and dropped (never forwarded, never answered, and no FIN
/// or RST passes), and a new connection is closed as soon as it is accepted. Each side's kernel
/// still acknowledges everything, so TCP keepalives and `tcp_user_timeout` see nothing wrong:
/// only the application can notice the silence. `close()` ends every connection, upstream
/// included (as a server that finally noticed would).
public final class BlackHoleProxy: Sendable {
    /// The port it listens on.
    public let port: Int
    private let upstream: sockaddr_in
    private let listener: Int32
    private let state = Mutex(State())

    private struct State {
        var cut = false
        var closed = false
        /// Set, under the lock, as the accept loop closes the listener: its number may then be
        /// reused, so `close()` must not shut it down any more.
        var listenerClosed = false
        var links: [Link] = []
    }

    /// A proxy for `host:port` (an IPv4 address), listening at once.
    public init(upstreamHost: String, upstreamPort: Int) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(upstreamPort).bigEndian)
        let host = upstreamHost == "localhost" ? "127.0.0.1" : upstreamHost
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw ProxyError("not an IPv4 address: \(upstreamHost)") }
        upstream = address
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ProxyError("socket: errno \(errno)") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = 0
        local.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &local) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(listener, address, length) == 0 && Glibc.listen(listener, 64) == 0 && getsockname(listener, address, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(listener)
            throw ProxyError("bind/listen: errno \(errno)")
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: local.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// From now on nothing passes, either way, on any connection, and new ones are closed.
    public func cut() {
        state.withLock { $0.cut = true }
    }

    /// Ends every connection (both sides) and stops listening.
    public func close() {
        let links = state.withLock { state -> [Link] in
            guard !state.closed else { return [] }
            state.closed = true
            if !state.listenerClosed { _ = shutdown(listener, Int32(SHUT_RDWR)) }
            return state.links
        }
        for link in links { link.shutDown() }
    }

    private var isCut: Bool { state.withLock { $0.cut || $0.closed } }

    private func acceptLoop() {
        defer {
            state.withLock { state in
                Glibc.close(listener)
                state.listenerClosed = true
            }
        }
        while true {
            let client = accept(listener, nil, nil)
            if state.withLock({ $0.closed }) {
                if client >= 0 { Glibc.close(client) }
                return
            }
            guard client >= 0 else { continue }
            if isCut {
                Glibc.close(client)
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = upstream
            let connected = server >= 0 && withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                if server >= 0 { Glibc.close(server) }
                Glibc.close(client)
                continue
            }
            let link = Link(client: client, server: server)
            let accepted = state.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.links.append(link)
                return true
            }
            guard accepted else {
                link.shutDown()
                link.release()
                link.release()
                continue
            }
            Thread.detachNewThread { [self] in pump(link, from: link.client, to: link.server) }
            Thread.detachNewThread { [self] in pump(link, from: link.server, to: link.client) }
        }
    }

    /// Copies `from` to `to` until either ends; while cut, reads and drops.
    private func pump(_ link: Link, from: Int32, to: Int32) {
        defer { link.release() }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if count <= 0 {
                // The end passes on only while the proxy forwards; a black hole keeps it.
                if !isCut { link.shutDown() }
                return
            }
            if isCut { continue }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                if written <= 0 {
                    link.shutDown()
                    return
                }
                sent += written
            }
        }
    }
}

/// One proxied connection: its two sockets, closed once both pumps are done with them (and
/// never shut down after that, when their numbers may belong to someone else).
private final class Link: Sendable {
    let client: Int32
    let server: Int32
    private let users = Mutex(2)

    init(client: Int32, server: Int32) {
        self.client = client
        self.server = server
    }

    func shutDown() {
        users.withLock { users in
            guard users > 0 else { return }
            _ = shutdown(client, Int32(SHUT_RDWR))
            _ = shutdown(server, Int32(SHUT_RDWR))
        }
    }

    func release() {
        users.withLock { users in
            users -= 1
            if users == 0 {
                Glibc.close(client)
                Glibc.close(server)
            }
        }
    }
}

struct ProxyError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
