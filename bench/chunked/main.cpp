// Stand-alone timing of the chunked prefill:
//   chunked_bench [--reps N] [--segments N] [--shape I] [--state hi|hi+lo] [--window-mb N]
//                 [--prefix 0|1] [--prefix-share X] [--p-warpgroup 0|1] [--varlen-only]
//                 [--varlen-window N]
// --shape I times only the I-th row of the table (0-based, without the serving row), --state
// only that state operand (both serve profilers that should see one configuration);
// --window-mb bounds the workspace records of one window (default: the library's kWindowBytes);
// --prefix 0|1 never / always gives segments their start by prefix walks (default: the rule),
// --prefix-share X sets the chain-alone share that sizes them (default: the library's 0.5);
// --p-warpgroup 0 keeps P o Q K^T in the outputs warpgroup of the final pass (default 1: a
// fourth warpgroup forms it where the pass has that form).
#include "bench.hpp"

int main(int argc, char** argv) { return linattn::bench::bench_chunked_prefill(argc, argv); }
