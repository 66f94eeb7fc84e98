//! Reports for compiler engineers: results to Markdown, JSON and a self-contained HTML
//! page with plots, missed optimizations ranked by hotness times savings (issue 6).
