import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Planning
import Postgres
import Store

/// A change of a campaign's status an operator may ask for on the dashboard (`http.actions: true`).
enum OperatorAction: String, CaseIterable, Sendable {
    case pause, resume, cancel

    /// The status it sets.
    var status: CampaignStatus {
        switch self {
        case .pause: .paused
        case .resume: .active
        case .cancel: .cancelled
        }
    }

    var verb: String {
        switch self {
        case .pause: "Pause"
        case .resume: "Resume"
        case .cancel: "Cancel"
        }
    }

    /// What happens, said on the confirmation page.
    var consequence: String {
        switch self {
        case .pause: "Nothing of it is pushed until it is resumed; its records wait in the queue, and those whose window ends meanwhile expire."
        case .resume: "Its windows are planned and pushed again."
        case .cancel: "Nothing of it is pushed any more. Cancelling is final: it cannot be resumed."
        }
    }

    /// The actions a campaign with `status` offers.
    static func offered(for status: CampaignStatus?) -> [OperatorAction] {
        switch status {
        case .active: [.pause, .cancel]
        case .paused: [.resume, .cancel]
        case .cancelled, nil: []
        }
    }
}

/// The actions' defence against cross-site requests (a browser sends its basic-auth credentials
/// with a forged form too): a per-process secret HMACs each (campaign, action) into the token the
/// confirmation form carries; a POST must bring it back (compared in constant time) and come from
/// a page of this server (its Origin, else its Referer, names the host it was sent to).
struct ActionGuard: Sendable {
    let key = SymmetricKey(size: .bits256)

    func token(campaign: Int64, action: OperatorAction) -> String {
        HMAC<SHA256>.authenticationCode(for: Data("\(campaign) \(action.rawValue)".utf8), using: key)
            .map { String(format: "%02x", $0) }.joined()
    }

    func accepts(_ presented: String?, campaign: Int64, action: OperatorAction) -> Bool {
        guard let presented else { return false }
        return DashboardAuth.matches(presented, token(campaign: campaign, action: action))
    }

    /// Whether `request` was sent from a page of the host it was sent to.
    static func sameOrigin(_ request: Request) -> Bool {
        guard let authority = request.head.authority?.lowercased(), !authority.isEmpty,
              let source = request.headers[.origin] ?? request.headers[.referer],
              let url = URL(string: source), let host = url.host else { return false }
        return (url.port.map { "\(host):\($0)" } ?? host).lowercased() == authority
    }

    /// The value of `name` in an `application/x-www-form-urlencoded` body.
    static func formValue(_ name: String, in body: String) -> String? {
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == name[...] else { continue }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return nil
    }
}

extension Dashboard {
    /// The confirmation page and the POST of each action; registered only with `http.actions: true`.
    func registerActions(on router: Router<BasicRequestContext>) {
        router.get("/campaigns/{id}/confirm/{action}") { _, context -> Response in
            guard let id = context.parameters.get("id", as: Int64.self),
                  let action = context.parameters.get("action").flatMap(OperatorAction.init(rawValue:)) else { return self.notFound("no such action") }
            guard let campaign = try await self.database.withConnection({ try await self.store.campaign(id, on: $0) }) else {
                return self.notFound("campaign \(id) does not exist")
            }
            guard OperatorAction.offered(for: CampaignStatus(rawValue: campaign.status)).contains(action) else {
                return self.problem(.conflict, "Nothing to do", "Campaign \(id) is \(campaign.status): it cannot be \(action.status.rawValue) from there.")
            }
            return Self.html(DashboardPages.confirm(campaign, action, token: self.actionGuard.token(campaign: id, action: action), now: self.now()))
        }
        router.post("/campaigns/{id}/actions/{action}") { request, context -> Response in
            guard let id = context.parameters.get("id", as: Int64.self),
                  let action = context.parameters.get("action").flatMap(OperatorAction.init(rawValue:)) else { return self.notFound("no such action") }
            let body = String(buffer: try await request.body.collect(upTo: 8_192))
            guard ActionGuard.sameOrigin(request), self.actionGuard.accepts(ActionGuard.formValue("csrf", in: body), campaign: id, action: action) else {
                return self.problem(.forbidden, "Refused",
                    "The form's check token is missing or wrong, or the request did not come from this dashboard. Nothing was changed: open the campaign page and use its buttons again.")
            }
            do {
                _ = try await self.database.withConnection { try await OperatorStore().setStatus(of: id, to: action.status, on: $0) }
            } catch OperatorRefusal.notGranted {
                return self.problem(.forbidden, "Not allowed",
                    "This daemon's database role may not change campaigns. An administrator allows it with GRANT callwindow_operator TO the daemon's login role (see sql/roles.sql). Nothing was changed.")
            } catch OperatorRefusal.noCampaign {
                return self.notFound("campaign \(id) does not exist")
            } catch OperatorRefusal.refused(let message) {
                return self.problem(.conflict, "Refused", message)
            }
            return Response(status: .seeOther, headers: [.location: "/campaigns/\(id)"])
        }
    }
}
