// `linattn bench`: forwards to the benchmark entry points of bench/ for the chosen device.
#include <cstdio>
#include <string>
#include <vector>

#include "bench.hpp"
#include "commands.hpp"

namespace linattn::tool {

int bench_main(int argc, char** argv, int first) {
  std::string device = "cpu";
  std::vector<char*> rest;
  static char prog[] = "linattn bench";
  rest.push_back(prog);
  bool help = false;
  bool chunked = false;  // the chunked-prefill table instead of the decode/conv sweep (CUDA)
  bool sweep = false;    // prefill time against length, chunked and recurrent (CUDA)
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--device") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: --device needs a value (cpu|cuda|auto)\n");
        return kExitUsage;
      }
      device = argv[++i];
    } else if (a.rfind("--device=", 0) == 0) {
      device = a.substr(9);
    } else if (a == "--chunked-prefill") {
      chunked = true;
    } else if (a == "--prefill-sweep") {
      sweep = true;
    } else {
      if (a == "-h" || a == "--help") help = true;
      rest.push_back(argv[i]);
    }
  }
  if (help)
    std::printf("usage: linattn bench [--device cpu|cuda|auto] [benchmark options]\n\n"
                "Runs the benchmarks of the chosen device (default cpu; auto = cuda when a GPU "
                "is visible).\n  --chunked-prefill  (cuda) time the chunked prefill on the "
                "issue's shapes instead of the decode/conv sweep (options: --reps N, --shape I, "
                "--state hi|hi+lo, --segments N, --window-mb N, --prefix 0|1, --prefix-share X, "
                "--p-warpgroup 0|1, --varlen-only)\n  --prefill-sweep    (cuda) "
                "prefill time against length, chunked and recurrent (options: --reps N, --plot "
                "F.svg)\nThe options below belong to that device's benchmark:\n\n");
  DeviceChoice choice;
  std::string err;
  if (!resolve_device(device, &choice, &err)) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return kExitUsage;
  }
  rest.push_back(nullptr);
  const int n = static_cast<int>(rest.size()) - 1;
  if (chunked || sweep) {
    if (choice.backend != LINATTN_BACKEND_CUDA) {
      std::fprintf(stderr, "error: %s needs --device cuda\n",
                   chunked ? "--chunked-prefill" : "--prefill-sweep");
      return kExitUsage;
    }
    return chunked ? bench::bench_chunked_prefill(n, rest.data())
                   : bench::bench_prefill_sweep(n, rest.data());
  }
  return choice.backend == LINATTN_BACKEND_CUDA ? bench::bench_main_cuda(n, rest.data())
                                                : bench::bench_main_cpu(n, rest.data());
}

}  // namespace linattn::tool
