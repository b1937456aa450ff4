import Planning

/// The dashboard's look: its stylesheet and the colour of each delivery state, all taken from
/// `TimelinePalette`, the constants the preview's SVG legend uses too.
enum DashboardStyle {
    /// The progress segments in display order, with their colour and label.
    static let segments: [(key: String, label: String, colour: String)] = [
        ("accepted", "accepted", TimelinePalette.accepted),
        ("rejected", "rejected", TimelinePalette.rejected),
        ("expired", "expired", TimelinePalette.expired),
        ("cancelled", "cancelled", TimelinePalette.cancelledStroke),
        ("pending", "pending", TimelinePalette.pending),
    ]

    /// Links: dark enough blue for 4.5:1 on white.
    static let link = "#0b5cad"

    static var css: String {
        var rules = """
        *,*::before,*::after{box-sizing:border-box}
        html{-webkit-text-size-adjust:100%}
        body{margin:0;font-family:\(TimelinePalette.font);font-size:15px;line-height:1.45;color:\(TimelinePalette.text);background:#fff}
        header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;padding:.75rem 1rem;border-bottom:1px solid \(TimelinePalette.grid)}
        header strong{font-size:1.1rem}
        header nav a{margin-right:.9rem}
        main{max-width:1200px;margin:0 auto;padding:1rem}
        a{color:\(link)}
        h1{font-size:1.35rem;margin:.2rem 0 .8rem;overflow-wrap:anywhere}
        h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
        .muted{color:\(TimelinePalette.muted)}
        .accounts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,320px),1fr));gap:1rem}
        .card{border:1px solid \(TimelinePalette.grid);border-radius:8px;padding:.8rem 1rem;min-width:0}
        .card h2{margin:0 0 .5rem;font-size:1rem;overflow-wrap:anywhere}
        .figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(110px,1fr));gap:.5rem;margin:0}
        .figures div{min-width:0}.figures dt{font-size:.8rem;color:\(TimelinePalette.muted)}.figures dd{margin:0;font-size:1.15rem;font-variant-numeric:tabular-nums}
        .fingerprints{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;overflow-wrap:anywhere}
        .scroll{overflow-x:auto;max-width:100%}
        table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
        th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid \(TimelinePalette.gridMinor);vertical-align:top}
        th{font-size:.8rem;color:\(TimelinePalette.muted);font-weight:600;white-space:nowrap}
        td.name{overflow-wrap:anywhere;min-width:9rem}
        .bar{display:flex;height:.7rem;min-width:6rem;border-radius:4px;overflow:hidden;background:\(TimelinePalette.gridMinor)}
        .bar span{display:block;height:100%}
        .legend{display:flex;flex-wrap:wrap;gap:.3rem .9rem;font-size:.85rem;margin:.4rem 0;padding:0;list-style:none}
        .legend i{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
        .problem{color:\(TimelinePalette.lateStroke)}
        svg.timeline{width:100%;height:auto;display:block}
        form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin-bottom:1rem}
        form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:\(TimelinePalette.muted)}
        form.filters input,form.filters select{font:inherit;padding:.25rem .4rem;max-width:100%}
        .empty{padding:1rem;border:1px dashed \(TimelinePalette.grid);border-radius:8px}
        .spark{width:100%;max-width:260px;height:36px;display:block}
        .actions{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin:.6rem 0}
        .actions form{margin:0}
        button{font:inherit;padding:.3rem .9rem;border:1px solid \(TimelinePalette.muted);border-radius:6px;background:#fff;color:\(TimelinePalette.text);cursor:pointer}

        """
        for segment in segments {
            rules += ".s-\(segment.key){background:\(segment.colour)}\n"
        }
        return rules
    }

    /// Polls `/live.json` every 2 s, updates the elements marked `data-live` and counts its
    /// refreshes in `<html data-live-refreshes>`. The URL is built from `location.origin`: a
    /// page opened with credentials in its URL cannot fetch a relative one, and the browser
    /// sends its basic-auth credentials on same-origin requests by itself.
    static let script = """
    (function () {
      "use strict";
      var refreshes = 0;
      function refresh() {
        fetch(location.origin + "/live.json", { credentials: "same-origin", cache: "no-store" })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (live) {
            if (!live) { return; }
            document.querySelectorAll("[data-live]").forEach(function (element) {
              var value = live.values[element.getAttribute("data-live")];
              if (value !== undefined) { element.textContent = String(value); }
            });
            var stamp = document.getElementById("live-at");
            if (stamp) { stamp.textContent = live.at; }
            refreshes += 1;
            document.documentElement.setAttribute("data-live-refreshes", String(refreshes));
          })
          .catch(function () {});
      }
      if (document.querySelector("[data-live]")) { setInterval(refresh, 2000); }
    })();
    """
}
