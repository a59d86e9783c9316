// linattn: the command-line program. A thin client of the public API (include/linattn):
//   linattn run      the Qwen3.5-shaped GatedDeltaNet layer: prefill + decode, checked, timed
//   linattn op       one operator call on .npy inputs, outputs written as .npy
//   linattn verify   random cases against the float64 oracle
//   linattn bench    the benchmarks
#include <cstdio>
#include <cstring>
#include <string>

#include "commands.hpp"

namespace {

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: linattn <command> [options]\n\n"
               "Recurrent-state operators of hybrid language models (LinearAttention and\n"
               "CausalConvWithState, ONNX Runtime com.microsoft semantics).\n\n"
               "commands:\n"
               "  run      a Qwen3.5-shaped GatedDeltaNet layer (conv + linear attention over a\n"
               "           prompt, then decode steps), checked against the oracle and timed\n"
               "  op       run one operator on .npy inputs and write its outputs as .npy\n"
               "  verify   compare a sweep of random cases with the float64 oracle\n"
               "  bench    benchmarks (linattn bench --device cpu|cuda --help)\n\n"
               "`linattn <command> --help` describes each command. Every command exits with\n"
               "status 0 on success, 1 on any failure (including a failed check), 2 on a usage\n"
               "error.\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace linattn::tool;
  if (argc < 2) {
    print_usage(stderr);
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    print_usage(stdout);
    return kExitOk;
  }
  if (cmd == "--version") {
    std::printf("linattn %d.%d.%d\n", LINATTN_VERSION_MAJOR, LINATTN_VERSION_MINOR,
                LINATTN_VERSION_PATCH);
    return kExitOk;
  }
  if (cmd == "run") return run_main(argc, argv, 2);
  if (cmd == "op") return op_main(argc, argv, 2);
  if (cmd == "verify") return verify_main(argc, argv, 2);
  if (cmd == "bench") return bench_main(argc, argv, 2);
  std::fprintf(stderr, "error: unknown command '%s'\n\n", cmd.c_str());
  print_usage(stderr);
  return kExitUsage;
}
