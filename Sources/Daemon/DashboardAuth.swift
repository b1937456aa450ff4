public import Config
public import Foundation
public import Hummingbird
import HTTPTypes

/// The operations server's access rule: on a loopback host no token is needed; on any other
/// host it refuses to start unless `http.auth_token_env` names a variable holding a bearer
/// token, and then every path but /healthz and /readyz requires it.
public enum DashboardAuth {
    /// The bearer token the server must require, nil when none is needed (loopback, no
    /// variable named). Throws, naming the key or the variable (never the value), when the
    /// server must not start.
    public static func token(http: Configuration.HTTP, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(CallWindowError) -> String? {
        if http.authTokenEnv.isEmpty {
            if Configuration.HTTP.isLoopback(http.host) { return nil }
            throw CallWindowError("http.host \(http.host) is not a loopback address: set http.auth_token_env to the name of an environment variable holding a bearer token, or bind 127.0.0.1")
        }
        guard let token = environment[http.authTokenEnv], !token.isEmpty else {
            throw CallWindowError("http.auth_token_env names \(http.authTokenEnv), but that environment variable is not set or empty: put the bearer token in it")
        }
        guard token.utf8.count >= 16 else {
            throw CallWindowError("the bearer token in \(http.authTokenEnv) (http.auth_token_env) is shorter than 16 characters: use a longer random one")
        }
        return token
    }

    /// Whether `presented` equals `expected`, in time that depends only on `presented`'s length.
    public static func matches(_ presented: String, _ expected: String) -> Bool {
        let given = Array(presented.utf8)
        let wanted = Array(expected.utf8)
        guard !wanted.isEmpty else { return false }
        var difference = UInt64(truncatingIfNeeded: given.count ^ wanted.count)
        for index in given.indices {
            difference |= UInt64(given[index] ^ wanted[index % wanted.count])
        }
        return difference == 0
    }

    /// Paths anyone may read: they reveal nothing.
    static let openPaths: Set<String> = ["/healthz", "/readyz"]
}

/// Answers 401 to a request without `Authorization: Bearer <token>`, except on the open paths.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if DashboardAuth.openPaths.contains(request.uri.path) {
            return try await next(request, context)
        }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        if header.hasPrefix(prefix), DashboardAuth.matches(String(header.dropFirst(prefix.count)), token) {
            return try await next(request, context)
        }
        return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"callwindow\"", .contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "a bearer token is required (Authorization: Bearer …)\n")))
    }
}
