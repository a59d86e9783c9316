// Placeholder until the CPU benchmark lands.
#include <cstdio>
#include "bench.hpp"
namespace linattn::bench {
int bench_main_cpu(int, char**) {
  std::fprintf(stderr, "linattn bench --device cpu: not implemented yet\n");
  return 2;
}
}  // namespace linattn::bench
