#include <cstdio>
#include "bench.hpp"
namespace linattn::bench {
int bench_main_cuda(int, char**) {
  std::fprintf(stderr, "linattn bench: this build has no CUDA backend\n");
  return 2;
}
int bench_chunked_prefill(int, char**) {
  std::fprintf(stderr, "linattn bench: this build has no CUDA backend\n");
  return 2;
}
}  // namespace linattn::bench
