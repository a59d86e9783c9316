// The machine's own ceilings, measured before the CPU benchmark sweep: the rooflines every case
// is judged against.
#pragma once

#include <string>

namespace linattn::bench {

struct CpuCeilings {
  double copy_gbs = 0;      // large copy, read + write bytes counted, all threads
  double fma_gflops = 0;    // float32 FMA peak (2 FLOPs per lane), all threads
  std::string fma_isa;      // vector width the peak was measured with
  std::string cpu_model;    // /proc/cpuinfo "model name"
};

// Runs on `threads` threads. copy_mib: bytes of each of the source and destination buffers
// (>> last-level cache).
CpuCeilings measure_cpu_ceilings(int threads, int copy_mib);

}  // namespace linattn::bench
