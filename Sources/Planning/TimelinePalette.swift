// The one set of colours shared by the preview's SVG timeline, the dashboard's SVG timeline and
// the dashboard's stylesheet (progress bars, legends): a unit test checks they stay the same.

/// Colours of windows, pushes and delivery states, as CSS hex strings.
public enum TimelinePalette {
    /// A planned window (and pending records).
    public static let planned = "#3b7dd8"
    /// A window whose push misses its deadline.
    public static let late = "#f08c00"
    /// The outline of a late window.
    public static let lateStroke = "#c92a2a"
    /// An expired window, and expired records.
    public static let expired = "#b8bfc7"
    /// A cancelled window's fill.
    public static let cancelled = "#eceff2"
    /// A cancelled window's outline and hatching, and cancelled records.
    public static let cancelledStroke = "#868e96"
    /// A paused campaign's windows.
    public static let paused = "#a9c7f0"
    /// A push interval.
    public static let push = "#1d2b3a"
    /// A late push interval.
    public static let pushLate = "#c92a2a"
    /// The now-line.
    public static let now = "#e03131"
    /// Body text.
    public static let text = "#1f2328"
    /// Secondary text.
    public static let muted = "#59636e"
    /// Major grid lines and borders.
    public static let grid = "#d8dee4"
    /// Minor grid lines.
    public static let gridMinor = "#eef1f4"
    /// Alternate lane shading.
    public static let laneShade = "#f6f8fa"
    /// A campaign's range band.
    public static let band = "#f1f6fd"
    /// A campaign's range band outline.
    public static let bandStroke = "#c9d8ee"
    /// Records the API accepted.
    public static let accepted = "#2f9e44"
    /// Records refused for good.
    public static let rejected = "#c92a2a"
    /// Records waiting in the queue or being sent.
    public static let pending = "#3b7dd8"
    /// The font stack.
    public static let font = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
}
