// A small log-log line plot written as SVG (benchmarks: time or throughput against length).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace linattn::bench {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), both > 0, x ascending
};

// x on a log2 axis labelled at the points' x values, y on a log10 axis with decade grid lines.
// Returns false with *err set when nothing can be plotted or the file cannot be written.
bool write_loglog_svg(const std::string& path, const std::string& title, const std::string& xlabel,
                      const std::string& ylabel, const std::vector<PlotSeries>& series,
                      std::string* err);

}  // namespace linattn::bench
