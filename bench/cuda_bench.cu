// Placeholder until the GPU benchmark lands.
#include <cstdio>
#include "bench.hpp"
namespace linattn::bench {
int bench_main_cuda(int, char**) {
  std::fprintf(stderr, "linattn bench --device cuda: not implemented yet\n");
  return 2;
}
}  // namespace linattn::bench
