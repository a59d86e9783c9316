// The CUDA benchmark entries in a build without the CUDA backend.
#include <cstdio>

#include "bench.hpp"

namespace linattn::bench {
namespace {
int no_cuda() {
  std::fprintf(stderr, "linattn bench: this build has no CUDA backend\n");
  return 2;
}
}  // namespace
int bench_main_cuda(int, char**) { return no_cuda(); }
int bench_chunked_prefill(int, char**) { return no_cuda(); }
int bench_prefill_sweep(int, char**) { return no_cuda(); }
}  // namespace linattn::bench
