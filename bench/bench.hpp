// Benchmark entry points behind `linattn bench`. Each takes the subcommand's arguments (after
// `--device X` was consumed) and returns a process exit code.
#pragma once

namespace linattn::bench {
int bench_main_cpu(int argc, char** argv);   // bench/cpu_bench.cpp
int bench_main_cuda(int argc, char** argv);  // bench/cuda_bench.cu (a stub without CUDA)
// Chunked-prefill timing table (bench/chunked_bench.cu; CUDA builds only).
int bench_chunked_prefill(int argc, char** argv);
// Prefill time against length, chunked and recurrent (bench/prefill_sweep.cu; CUDA builds only).
int bench_prefill_sweep(int argc, char** argv);
}  // namespace linattn::bench
