// `linattn bench --device cpu`: measures the machine's ceilings (copy bandwidth, FMA peak), then
// times a sweep of LinearAttention and CausalConvWithState cases through the public C API and
// reports each against its roofline (and against a peer's times when given).
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "cpu/isa.hpp"
#include "cpu_cases.hpp"
#include "cpu_ceilings.hpp"
#include "cpu_report.hpp"

namespace linattn::bench {
namespace {

struct CpuOptions {
  int threads = 0;  // 0 = all hardware threads
  bool quick = false, list = false;
  std::vector<std::string> filters;
  std::string json, csv, plot, peer;
  double time_s = 0.6;  // timed seconds per case (at least 3 calls)
  int copy_mib = 512;
};

void usage() {
  std::printf(
      "linattn bench --device cpu [options]\n\n"
      "Measures copy bandwidth and float32 FMA peak, then times LinearAttention and\n"
      "CausalConvWithState cases (median of repeated calls after a warm-up; decode cases\n"
      "rotate through state copies far larger than the last-level cache) and reports\n"
      "tokens/s, GB/s, GFLOP/s and percent of the roofline max(FLOPs/peak, bytes/bandwidth).\n"
      "Prefill FLOPs are counted with the chunked form, 6*dk*dv + 5.25*C*dk + 4*C*dv\n"
      "per token per value head (C = 64; 174 kFLOP at d = 128); bytes are inputs + outputs +\n"
      "state read and written.\n\n"
      "options:\n"
      "  --threads N       CPU threads (default 0 = all hardware threads)\n"
      "  --quick           a short sweep (the target rows and a few lengths)\n"
      "  --case STR        only cases whose name contains STR (repeatable: any of them)\n"
      "  --list            print the selected cases, do not time them (--json writes them)\n"
      "  --json FILE       write the results as JSON\n"
      "  --csv FILE        write the results as CSV\n"
      "  --plot FILE.svg   plot prefill tokens/s against length with the roofline (and peer)\n"
      "  --peer FILE.csv   peer times (columns name,median_ms, e.g. from bench/ort_peer_bench.py)\n"
      "  --time S          timed seconds per case (default 0.6)\n"
      "  --copy-mib N      MiB per buffer of the copy-bandwidth test (default 512)\n");
}

bool parse(int argc, char** argv, CpuOptions* o, int* rc) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
    if (a == "-h" || a == "--help") {
      usage();
      *rc = 0;
      return false;
    } else if (a == "--quick") {
      o->quick = true;
    } else if (a == "--list") {
      o->list = true;
    } else if (a == "--threads" || a == "--case" || a == "--json" || a == "--csv" ||
               a == "--plot" || a == "--peer" || a == "--time" || a == "--copy-mib") {
      if ((v = value(a.c_str())) == nullptr) {
        *rc = 2;
        return false;
      }
      if (a == "--threads") o->threads = std::atoi(v);
      else if (a == "--case") o->filters.push_back(v);
      else if (a == "--json") o->json = v;
      else if (a == "--csv") o->csv = v;
      else if (a == "--plot") o->plot = v;
      else if (a == "--peer") o->peer = v;
      else if (a == "--time") o->time_s = std::atof(v);
      else o->copy_mib = std::atoi(v);
    } else {
      std::fprintf(stderr, "error: unknown option %s (see --help)\n", a.c_str());
      *rc = 2;
      return false;
    }
  }
  if (o->threads < 0 || o->copy_mib < 16 || !(o->time_s > 0)) {
    std::fprintf(stderr, "error: --threads >= 0, --copy-mib >= 16 and --time > 0 are required\n");
    *rc = 2;
    return false;
  }
  return true;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

}  // namespace

int bench_main_cpu(int argc, char** argv) {
  CpuOptions o;
  int rc = 0;
  if (!parse(argc, argv, &o, &rc)) return rc;
  if (o.threads == 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  std::vector<CpuRow> rows;
  for (const CpuCase& c : cpu_sweep(o.quick)) {
    bool keep = o.filters.empty();
    for (const std::string& f : o.filters) keep |= c.name().find(f) != std::string::npos;
    if (keep) rows.push_back({c, {}, 0});
  }
  CpuRunInfo info;
  info.threads = o.threads;
  info.isa = detail::cpu::isa_name(detail::cpu::active_isa());
  info.date = utc_now();
  std::string err;
  if (o.list) {
    if (!o.json.empty()) return write_json(o.json, info, rows, &err) ? 0 : (std::fprintf(stderr, "error: %s\n", err.c_str()), 1);
    for (const CpuRow& r : rows) std::printf("%s\n", r.c.name().c_str());
    return 0;
  }
  std::map<std::string, double> peer;
  if (!o.peer.empty() && !read_peer_csv(o.peer, &peer, &err)) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return 2;
  }

  info.ceil = measure_cpu_ceilings(o.threads, o.copy_mib);
  std::printf("cpu: %s, %d threads, kernels: %s\n", info.ceil.cpu_model.c_str(), o.threads,
              info.isa.c_str());
  std::printf("ceilings: copy %.1f GB/s (read + write), float32 FMA peak %.1f GFLOP/s (%s)\n\n",
              info.ceil.copy_gbs, info.ceil.fma_gflops, info.ceil.fma_isa.c_str());
  print_row_header();
  int failures = 0;
  for (CpuRow& row : rows) {
    if (!run_cpu_case(row.c, o.threads, o.time_s, info.ceil, &row.r, &err)) {
      std::fprintf(stderr, "error: %s: %s\n", row.c.name().c_str(), err.c_str());
      ++failures;
      continue;
    }
    auto it = peer.find(row.c.name());
    if (it != peer.end()) row.peer_ms = it->second;
    print_row(row);
  }
  if (!o.json.empty() && !write_json(o.json, info, rows, &err)) ++failures;
  if (!o.csv.empty() && !write_csv(o.csv, info, rows, &err)) ++failures;
  if (!o.plot.empty() && !write_svg(o.plot, info, rows, &err)) ++failures;
  if (failures) std::fprintf(stderr, "error: %s\n", err.c_str());
  return failures ? 1 : 0;
}

}  // namespace linattn::bench
