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

    /// The token an `Authorization` header presents: a bearer token, or a basic-auth password
    /// (any user name). Browsers send basic auth on every request once a person typed it,
    /// including the live script's; Prometheus sends the bearer token.
    static func presented(_ header: String?) -> String? {
        guard let header else { return nil }
        if header.hasPrefix("Bearer ") { return String(header.dropFirst("Bearer ".count)) }
        guard header.hasPrefix("Basic "),
              let decoded = Data(base64Encoded: header.dropFirst("Basic ".count).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return String(text[text.index(after: colon)...])
    }

    /// Paths anyone may read: they reveal nothing.
    static let openPaths: Set<String> = ["/healthz", "/readyz"]
}

/// Answers 401 to a request without the token (`Authorization: Bearer <token>`, or basic auth
/// with the token as password), except on the open paths. The 401 offers both schemes, so a
/// browser asks for the password.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if DashboardAuth.openPaths.contains(request.uri.path) {
            return try await next(request, context)
        }
        if let presented = DashboardAuth.presented(request.headers[.authorization]), DashboardAuth.matches(presented, token) {
            return try await next(request, context)
        }
        var headers: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
        headers.append(HTTPField(name: .wwwAuthenticate, value: "Basic realm=\"callwindow\", charset=\"UTF-8\""))
        headers.append(HTTPField(name: .wwwAuthenticate, value: "Bearer realm=\"callwindow\""))
        return Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(
            string: "the token is required: Authorization: Bearer <token>, or basic auth with the token as password\n")))
    }
}
