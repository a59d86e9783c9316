// The subcommands of the linattn program. Each returns the process exit code (0 success,
// 1 failure, 2 usage error) and takes argv with argv[first] the first option.
#pragma once

#include <string>

#include "linattn/linattn.hpp"

namespace linattn::tool {

int run_main(int argc, char** argv, int first);     // cmd_run.cpp
int op_main(int argc, char** argv, int first);      // cmd_op.cpp
int verify_main(int argc, char** argv, int first);  // cmd_verify.cpp
int bench_main(int argc, char** argv, int first);   // cmd_bench.cpp

// --device cpu|cuda|auto -> the backend and where tensors live.
struct DeviceChoice {
  linattn_backend backend = LINATTN_BACKEND_CPU;
  linattn_memory memory = LINATTN_MEMORY_HOST;
  const char* name = "cpu";
};
bool resolve_device(const std::string& device, DeviceChoice* out, std::string* error);

// A context for a backend; prints the library's message and returns false on failure.
bool open_context(linattn_backend backend, int threads, Context* ctx);

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace linattn::tool
