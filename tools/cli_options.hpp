// Option parsing for the subcommands: each subcommand lists its options once (name, value
// placeholder, help, a setter into its options struct); parsing and --help both read that list.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "linattn/linattn.h"

namespace linattn::tool {

struct Option {
  std::string name;     // "--batch"
  std::string metavar;  // "N"; empty for a flag that takes no value
  std::string help;
  // Stores the value; returns an error message, or "" on success.
  std::function<std::string(const std::string& value)> set;
};

struct CommandSpec {
  std::string usage;        // "linattn run [options]"
  std::string description;  // a paragraph
  std::vector<Option> options;
  std::string epilog;       // notes printed after the options
};

enum class ParseResult { kOk, kHelp, kError };

// Parses argv[first..argc). Accepts "--name value" and "--name=value"; "-h"/"--help" print the
// help to stdout. Unknown options and bad values print an error to stderr.
ParseResult parse_command(const CommandSpec& spec, int argc, char** argv, int first);
void print_help(const CommandSpec& spec, FILE* out);

// Builders for the common option kinds.
Option int_option(std::string name, std::string metavar, std::string help, int* target,
                  long long min_value, long long max_value = (1LL << 31) - 1);
Option int64_option(std::string name, std::string metavar, std::string help, int64_t* target,
                    long long min_value);
Option float_option(std::string name, std::string metavar, std::string help, double* target);
Option string_option(std::string name, std::string metavar, std::string help,
                     std::string* target);
Option choice_option(std::string name, std::vector<std::string> choices, std::string help,
                     std::string* target);
Option flag_option(std::string name, std::string help, bool* target);
// "f32|f16|bf16" (also float32, float16, bfloat16).
Option dtype_option(std::string name, std::string help, linattn_dtype* target);

bool parse_dtype(const std::string& text, linattn_dtype* out);
const char* short_dtype_name(linattn_dtype dtype);

}  // namespace linattn::tool
