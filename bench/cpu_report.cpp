#include "cpu_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace linattn::bench {
namespace {

double tokens_per_s(const CpuRow& row) {
  return row.r.median_s > 0 ? static_cast<double>(row.c.tokens()) / row.r.median_s : 0;
}

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

}  // namespace

bool read_peer_csv(const std::string& path, std::map<std::string, double>* out, std::string* err) {
  std::ifstream f(path);
  if (!f) {
    *err = "cannot read peer file " + path;
    return false;
  }
  std::string line;
  std::getline(f, line);  // header
  std::vector<std::string> head;
  {
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) head.push_back(cell);
  }
  const auto col = std::find(head.begin(), head.end(), "median_ms") - head.begin();
  if (head.empty() || head[0] != "name" || col >= static_cast<long>(head.size())) {
    *err = "peer file " + path + ": expected a header starting with name and a median_ms column";
    return false;
  }
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::vector<std::string> cells;
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (static_cast<long>(cells.size()) > col && !cells[col].empty())
      (*out)[cells[0]] = std::atof(cells[col].c_str());
  }
  return true;
}

void print_row_header() {
  std::printf("%-46s %10s %12s %8s %9s %7s %4s %10s %7s\n", "case", "median_ms", "tokens/s",
              "GB/s", "GFLOP/s", "%roof", "by", "peer_ms", "speedup");
}

void print_row(const CpuRow& row) {
  const double t = row.r.median_s;
  std::printf("%-46s %10.3f %12.0f %8.1f %9.1f %6.1f%% %4s", row.c.name().c_str(), t * 1e3,
              tokens_per_s(row), row.c.bytes() / t / 1e9, row.c.flops() / t / 1e9,
              row.r.percent_of_roofline(), row.r.bound);
  if (row.peer_ms > 0)
    std::printf(" %10.3f %6.1fx", row.peer_ms, row.peer_ms / (t * 1e3));
  std::printf("\n");
  std::fflush(stdout);
}

bool write_json(const std::string& path, const CpuRunInfo& info, const std::vector<CpuRow>& rows,
                std::string* err) {
  std::ofstream f(path);
  if (!f) {
    *err = "cannot write " + path;
    return false;
  }
  f << "{\n  \"device\": \"cpu\",\n  \"date\": \"" << info.date << "\",\n  \"cpu_model\": \""
    << info.ceil.cpu_model << "\",\n  \"threads\": " << info.threads << ",\n  \"kernel_isa\": \""
    << info.isa << "\",\n  \"copy_gbs\": " << info.ceil.copy_gbs << ",\n  \"fma_gflops\": "
    << info.ceil.fma_gflops << ",\n  \"fma_isa\": \"" << info.ceil.fma_isa
    << "\",\n  \"cases\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const CpuCase& c = rows[i].c;
    const CpuResult& r = rows[i].r;
    f << "    {\"name\": \"" << c.name() << "\", \"op\": \"" << c.op << "\", \"phase\": \""
      << c.phase << "\", \"B\": " << c.B;
    if (c.op == "conv") {
      f << ", \"C\": " << c.C << ", \"L\": " << c.L << ", \"K\": " << c.K
        << ", \"activation\": \"" << (c.silu ? "silu" : "none") << "\"";
    } else {
      f << ", \"T\": " << c.T << ", \"Hq\": " << c.Hq << ", \"Hkv\": " << c.Hkv
        << ", \"dk\": " << c.dk << ", \"dv\": " << c.dv << ", \"rule\": \"" << c.rule << "\"";
    }
    f << ", \"dtype\": \"" << c.dtype << "\", \"state_dtype\": \"" << c.state_dtype << "\"";
    if (r.reps > 0) {
      f << ", \"median_ms\": " << r.median_s * 1e3 << ", \"best_ms\": " << r.best_s * 1e3
        << ", \"reps\": " << r.reps << ", \"tokens_per_s\": " << tokens_per_s(rows[i])
        << ", \"bytes\": " << c.bytes() << ", \"flops\": " << c.flops()
        << ", \"gbs\": " << c.bytes() / r.median_s / 1e9
        << ", \"gflops\": " << c.flops() / r.median_s / 1e9
        << ", \"roofline_ms\": " << r.roofline_s * 1e3
        << ", \"percent_of_roofline\": " << r.percent_of_roofline() << ", \"bound\": \""
        << r.bound << "\"";
      if (rows[i].peer_ms > 0)
        f << ", \"peer_ms\": " << rows[i].peer_ms
          << ", \"speedup\": " << rows[i].peer_ms / (r.median_s * 1e3);
    }
    f << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  f << "  ]\n}\n";
  return true;
}

bool write_csv(const std::string& path, const CpuRunInfo& info, const std::vector<CpuRow>& rows,
               std::string* err) {
  std::ofstream f(path);
  if (!f) {
    *err = "cannot write " + path;
    return false;
  }
  f << "name,op,phase,B,T,Hq,Hkv,dk,dv,rule,C,L,K,dtype,state_dtype,threads,median_ms,best_ms,"
       "tokens_per_s,gbs,gflops,percent_of_roofline,bound,peer_ms,speedup\n";
  for (const CpuRow& row : rows) {
    const CpuCase& c = row.c;
    const CpuResult& r = row.r;
    f << c.name() << "," << c.op << "," << c.phase << "," << c.B << "," << c.T << "," << c.Hq
      << "," << c.Hkv << "," << c.dk << "," << c.dv << "," << c.rule << "," << c.C << "," << c.L
      << "," << c.K << "," << c.dtype << "," << c.state_dtype << "," << info.threads << ","
      << r.median_s * 1e3 << "," << r.best_s * 1e3 << "," << tokens_per_s(row) << ","
      << c.bytes() / r.median_s / 1e9 << "," << c.flops() / r.median_s / 1e9 << ","
      << r.percent_of_roofline() << "," << r.bound << ",";
    if (row.peer_ms > 0) f << row.peer_ms << "," << row.peer_ms / (r.median_s * 1e3);
    else f << ",";
    f << "\n";
  }
  return true;
}

bool write_svg(const std::string& path, const CpuRunInfo& info, const std::vector<CpuRow>& rows,
               std::string* err) {
  std::vector<const CpuRow*> pts;
  for (const CpuRow& row : rows) {
    const CpuCase& c = row.c;
    if (c.op == "attention" && c.phase == "prefill" && c.B == 1 && c.Hq == 16 && c.Hkv == 32 &&
        c.rule == "gated_delta" && c.dtype == "f32" && c.state_dtype == "f32" && c.dk == 128)
      pts.push_back(&row);
  }
  std::sort(pts.begin(), pts.end(), [](auto a, auto b) { return a->c.T < b->c.T; });
  if (pts.empty()) {
    *err = "no float32 gated_delta B=1 prefill rows of the reference shape to plot";
    return false;
  }
  std::ofstream f(path);
  if (!f) {
    *err = "cannot write " + path;
    return false;
  }
  // Log-log axes: x = T, y = tokens/s.
  const double W = 720, H = 440, L = 80, R = 200, Tp = 40, Bt = 60;
  const double xmin = std::log2(std::max<double>(16, pts.front()->c.T / 2.0));
  const double xmax = std::log2(pts.back()->c.T * 2.0);
  const double roof_tps = 1.0 / (pts.front()->c.flops() / pts.front()->c.T /
                                 (info.ceil.fma_gflops * 1e9));
  double ylo = roof_tps, yhi = roof_tps;
  for (const CpuRow* p : pts) {
    ylo = std::min(ylo, tokens_per_s(*p));
    if (p->peer_ms > 0) ylo = std::min(ylo, p->c.tokens() / (p->peer_ms * 1e-3));
  }
  const double ymin = std::floor(std::log10(ylo * 0.8)), ymax = std::ceil(std::log10(yhi * 1.25));
  auto X = [&](double T) { return L + (std::log2(T) - xmin) / (xmax - xmin) * (W - L - R); };
  auto Y = [&](double v) { return Tp + (ymax - std::log10(v)) / (ymax - ymin) * (H - Tp - Bt); };
  f << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
       "fill=\"white\"/>\n";
  f << "<text x=\"" << L << "\" y=\"22\" font-size=\"14\">LinearAttention prefill, gated_delta "
    << "16/32 heads, d=128, B=1, float32, " << info.threads << " threads ("
    << info.ceil.cpu_model << ")</text>\n";
  // Grid and axes.
  for (double e = ymin; e <= ymax + 1e-9; e += 1) {
    const double y = Y(std::pow(10, e));
    f << "<line x1=\"" << L << "\" y1=\"" << y << "\" x2=\"" << W - R << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 8 << "\" y=\"" << y + 4
      << "\" text-anchor=\"end\">1e" << static_cast<int>(e) << "</text>\n";
  }
  for (const CpuRow* p : pts) {
    const double x = X(static_cast<double>(p->c.T));
    f << "<line x1=\"" << x << "\" y1=\"" << Tp << "\" x2=\"" << x << "\" y2=\"" << H - Bt
      << "\" stroke=\"#eee\"/><text x=\"" << x << "\" y=\"" << H - Bt + 16
      << "\" text-anchor=\"middle\">" << p->c.T << "</text>\n";
  }
  f << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 18
    << "\" text-anchor=\"middle\">sequence length T (tokens)</text>\n";
  f << "<text x=\"18\" y=\"" << (Tp + H - Bt) / 2 << "\" transform=\"rotate(-90 18 "
    << (Tp + H - Bt) / 2 << ")\" text-anchor=\"middle\">tokens/s</text>\n";
  // Roofline: FMA peak over the chunked-form FLOPs per token.
  const double yr = Y(roof_tps);
  f << "<line x1=\"" << L << "\" y1=\"" << yr << "\" x2=\"" << W - R << "\" y2=\"" << yr
    << "\" stroke=\"#c00\" stroke-dasharray=\"6,4\"/>\n<text x=\"" << W - R + 6 << "\" y=\""
    << yr + 4 << "\" fill=\"#c00\">FMA roofline " << fmt("%.0f", info.ceil.fma_gflops)
    << " GFLOP/s</text>\n";
  auto series = [&](const char* color, const char* label, auto value, double ly) {
    std::string d;
    int n = 0;
    for (const CpuRow* p : pts) {
      const double v = value(*p);
      if (v <= 0) continue;
      const double x = X(static_cast<double>(p->c.T)), y = Y(v);
      d += (n++ ? " L" : "M") + fmt("%.1f", x) + "," + fmt("%.1f", y);
      f << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"3.5\" fill=\"" << color << "\"/>\n";
    }
    if (n == 0) return;
    f << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n";
    f << "<text x=\"" << W - R + 6 << "\" y=\"" << ly << "\" fill=\"" << color << "\">" << label
      << "</text>\n";
  };
  series("#06c", "linattn", [](const CpuRow& r) { return tokens_per_s(r); }, Y(tokens_per_s(*pts.back())) + 4);
  series("#888", "ONNX Runtime", [](const CpuRow& r) {
    return r.peer_ms > 0 ? r.c.tokens() / (r.peer_ms * 1e-3) : 0.0;
  }, H - Bt - 10);
  f << "</svg>\n";
  return true;
}

}  // namespace linattn::bench
