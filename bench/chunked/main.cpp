// Stand-alone timing of the chunked prefill: chunked_bench [--reps N].
#include "bench.hpp"

int main(int argc, char** argv) { return linattn::bench::bench_chunked_prefill(argc, argv); }
