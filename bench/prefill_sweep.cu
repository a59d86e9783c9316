// `linattn bench --device cuda --prefill-sweep`: prefill time against length for the chunked
// and the token-recurrent kernels (reference heads 16/32, d = 128, gated_delta, bf16 q/k/v,
// float32 state), to show where the dispatch threshold (kChunkedPrefillMinTokens) should sit
// and how the chunked path scales; optionally an SVG plot of time against length.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.hpp"
#include "chunked_timing.hpp"
#include "cuda/linear_attention.hpp"
#include "svg_plot.hpp"

namespace linattn::bench {

namespace {

struct SweepRow {
  int64_t B, T;
  double chunked_ms, recurrent_ms;  // < 0: not timed
};

// The recurrent kernel is timed up to this length (beyond, it only grows linearly).
constexpr int64_t kRecurrentMaxT = 16384;

}  // namespace

int bench_prefill_sweep(int argc, char** argv) {
  int reps = 7;
  std::string plot;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--plot") == 0 && i + 1 < argc) plot = argv[++i];
    else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      std::printf("  --reps N       timed calls per point (median; default 7)\n"
                  "  --plot F.svg   write time against length (B = 1) as an SVG plot\n");
      return 0;
    }
  }
  std::vector<SweepRow> rows;
  // Short lengths at three batch sizes: where chunked starts to win.
  for (int64_t B : {1, 8, 32})
    for (int64_t T : {2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512}) rows.push_back({B, T, -1, -1});
  // Long lengths at B = 1: the scaling.
  for (int64_t T = 1024; T <= 65536; T *= 2) rows.push_back({1, T, -1, -1});
  std::printf("prefill sweep: heads 16/32, d=128, gated_delta, bf16 q/k/v, f32 state; "
              "dispatch threshold today: T >= %lld -> chunked\n",
              static_cast<long long>(detail::cuda::kChunkedPrefillMinTokens));
  std::printf("%6s %8s %12s %12s %10s %s\n", "B", "T", "chunked ms", "recurr. ms", "speedup", "faster");
  int rc = 0;
  for (SweepRow& r : rows) {
    const PrefillShape s{16, 32, r.B, r.T, 0.0};
    // The library's own choice of state operands: rounded state with decay.
    r.chunked_ms = time_prefill(s, false, PrefillPath::kChunked, reps);
    if (r.T <= kRecurrentMaxT) r.recurrent_ms = time_prefill(s, false, PrefillPath::kRecurrent, reps);
    if (r.chunked_ms < 0 || (r.T <= kRecurrentMaxT && r.recurrent_ms < 0)) rc = 1;
    char rec[32] = "-", sp[32] = "-";
    const char* who = "";
    if (r.recurrent_ms > 0 && r.chunked_ms > 0) {
      std::snprintf(rec, sizeof rec, "%.4f", r.recurrent_ms);
      std::snprintf(sp, sizeof sp, "%.2fx", r.recurrent_ms / r.chunked_ms);
      who = r.recurrent_ms < r.chunked_ms ? "recurrent" : "chunked";
    }
    std::printf("%6lld %8lld %12.4f %12s %10s %s\n", static_cast<long long>(r.B),
                static_cast<long long>(r.T), r.chunked_ms, rec, sp, who);
  }
  if (!plot.empty()) {
    std::vector<PlotSeries> series(2);
    series[0].name = "chunked (tensor cores)";
    series[1].name = "token-recurrent";
    for (const SweepRow& r : rows) {
      if (r.B != 1) continue;
      if (r.chunked_ms > 0) series[0].points.push_back({static_cast<double>(r.T), r.chunked_ms});
      if (r.recurrent_ms > 0) series[1].points.push_back({static_cast<double>(r.T), r.recurrent_ms});
    }
    std::string err;
    if (!write_loglog_svg(plot, "LinearAttention prefill on the GPU, B = 1, heads 16/32, d = 128, gated_delta",
                          "tokens T", "time (ms)", series, &err)) {
      std::fprintf(stderr, "plot: %s\n", err.c_str());
      rc = 1;
    } else {
      std::printf("plot written to %s\n", plot.c_str());
    }
  }
  return rc;
}

}  // namespace linattn::bench
