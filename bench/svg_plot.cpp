#include "svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

namespace linattn::bench {

namespace {
std::string num(double v, const char* f = "%.1f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
}  // namespace

bool write_loglog_svg(const std::string& path, const std::string& title, const std::string& xlabel,
                      const std::string& ylabel, const std::vector<PlotSeries>& series,
                      std::string* err) {
  double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
  std::set<double> xs;
  bool any = false;
  for (const PlotSeries& s : series)
    for (const auto& [x, y] : s.points) {
      if (x <= 0 || y <= 0) continue;
      xlo = any ? std::min(xlo, x) : x;
      xhi = any ? std::max(xhi, x) : x;
      ylo = any ? std::min(ylo, y) : y;
      yhi = any ? std::max(yhi, y) : y;
      xs.insert(x);
      any = true;
    }
  if (!any) {
    *err = "no positive points to plot";
    return false;
  }
  std::ofstream f(path);
  if (!f) {
    *err = "cannot write " + path;
    return false;
  }
  const double W = 760, H = 460, L = 80, R = 210, Tp = 40, Bt = 60;
  const double x0 = std::log2(xlo) - 0.5, x1 = std::log2(xhi) + 0.5;
  const double y0 = std::floor(std::log10(ylo)), y1 = std::ceil(std::log10(yhi));
  const double yspan = y1 > y0 ? y1 - y0 : 1;
  auto X = [&](double x) { return L + (std::log2(x) - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double y) { return Tp + (y1 - std::log10(y)) / yspan * (H - Tp - Bt); };
  f << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << L << "\" y=\"22\" font-size=\"14\">" << title << "</text>\n";
  for (double e = y0; e <= y1 + 1e-9; e += 1) {
    const double y = Y(std::pow(10, e));
    f << "<line x1=\"" << L << "\" y1=\"" << num(y) << "\" x2=\"" << W - R << "\" y2=\"" << num(y)
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 8 << "\" y=\"" << num(y + 4)
      << "\" text-anchor=\"end\">" << num(std::pow(10, e), "%g") << "</text>\n";
  }
  for (double x : xs) {
    const double px = X(x);
    f << "<line x1=\"" << num(px) << "\" y1=\"" << Tp << "\" x2=\"" << num(px) << "\" y2=\""
      << H - Bt << "\" stroke=\"#eee\"/><text x=\"" << num(px) << "\" y=\"" << H - Bt + 16
      << "\" text-anchor=\"middle\" font-size=\"10\">" << num(x, "%g") << "</text>\n";
  }
  f << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">"
    << xlabel << "</text>\n"
    << "<text x=\"18\" y=\"" << (Tp + H - Bt) / 2 << "\" transform=\"rotate(-90 18 "
    << (Tp + H - Bt) / 2 << ")\" text-anchor=\"middle\">" << ylabel << "</text>\n";
  const char* colors[] = {"#06c", "#c60", "#080", "#888", "#a0a"};
  for (size_t i = 0; i < series.size(); ++i) {
    const char* c = colors[i % 5];
    std::string d;
    int n = 0;
    for (const auto& [x, y] : series[i].points) {
      if (x <= 0 || y <= 0) continue;
      d += (n++ ? " L" : "M") + num(X(x)) + "," + num(Y(y));
      f << "<circle cx=\"" << num(X(x)) << "\" cy=\"" << num(Y(y)) << "\" r=\"3\" fill=\"" << c
        << "\"/>\n";
    }
    if (n > 0)
      f << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\"/>\n";
    f << "<text x=\"" << W - R + 10 << "\" y=\"" << Tp + 16 + 18 * i << "\" fill=\"" << c << "\">"
      << series[i].name << "</text>\n";
  }
  f << "</svg>\n";
  return static_cast<bool>(f);
}

}  // namespace linattn::bench
