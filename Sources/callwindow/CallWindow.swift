import ArgumentParser

/// The `callwindow` command: `main` only wires subcommands together.
@main
struct CallWindow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callwindow",
        abstract: "Schedules time-windowed call personalisation campaigns for the Truecaller for Business API.",
        discussion: """
            Campaigns are rows in PostgreSQL (schema callwindow). Exit codes: 0 success, \
            1 a failure the message explains, 64 bad command-line usage.
            """,
        subcommands: [
            MigrateCommand.self, RunCommand.self, PreviewCommand.self, StatusCommand.self, AuditCommand.self,
            LabelsCommand.self, TokensCommand.self, SandboxCommand.self, BenchCommand.self, EraseCommand.self,
        ]
    )
}
