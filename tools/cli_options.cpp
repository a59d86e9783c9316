#include "cli_options.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace linattn::tool {

ParseResult parse_command(const CommandSpec& spec, int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      print_help(spec, stdout);
      return ParseResult::kHelp;
    }
    std::string name = arg, value;
    bool has_value = false;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const Option* opt = nullptr;
    for (const Option& o : spec.options)
      if (o.name == name) opt = &o;
    if (!opt) {
      std::fprintf(stderr, "error: unknown option '%s' (see %s --help)\n", arg.c_str(),
                   spec.usage.substr(0, spec.usage.find(" [")).c_str());
      return ParseResult::kError;
    }
    if (opt->metavar.empty()) {
      if (has_value) {
        std::fprintf(stderr, "error: option %s takes no value\n", name.c_str());
        return ParseResult::kError;
      }
    } else if (!has_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: option %s needs a value (%s)\n", name.c_str(),
                     opt->metavar.c_str());
        return ParseResult::kError;
      }
      value = argv[++i];
    }
    const std::string err = opt->set(value);
    if (!err.empty()) {
      std::fprintf(stderr, "error: %s: %s\n", name.c_str(), err.c_str());
      return ParseResult::kError;
    }
  }
  return ParseResult::kOk;
}

void print_help(const CommandSpec& spec, FILE* out) {
  std::fprintf(out, "usage: %s\n\n%s\n", spec.usage.c_str(), spec.description.c_str());
  if (!spec.options.empty()) std::fprintf(out, "\noptions:\n");
  for (const Option& o : spec.options) {
    std::string left = o.name + (o.metavar.empty() ? "" : " " + o.metavar);
    if (left.size() < 26) {
      std::fprintf(out, "  %-26s %s\n", left.c_str(), o.help.c_str());
    } else {
      std::fprintf(out, "  %s\n  %-26s %s\n", left.c_str(), "", o.help.c_str());
    }
  }
  std::fprintf(out, "  %-26s %s\n", "-h, --help", "show this help and exit");
  if (!spec.epilog.empty()) std::fprintf(out, "\n%s\n", spec.epilog.c_str());
}

namespace {
bool to_ll(const std::string& s, long long* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}
}  // namespace

Option int_option(std::string name, std::string metavar, std::string help, int* target,
                  long long min_value, long long max_value) {
  return {std::move(name), std::move(metavar), std::move(help),
          [=](const std::string& v) -> std::string {
            long long x;
            if (!to_ll(v, &x)) return "'" + v + "' is not an integer";
            if (x < min_value || x > max_value)
              return "'" + v + "' is out of range [" + std::to_string(min_value) + ", " +
                     std::to_string(max_value) + "]";
            *target = static_cast<int>(x);
            return "";
          }};
}

Option int64_option(std::string name, std::string metavar, std::string help, int64_t* target,
                    long long min_value) {
  return {std::move(name), std::move(metavar), std::move(help),
          [=](const std::string& v) -> std::string {
            long long x;
            if (!to_ll(v, &x)) return "'" + v + "' is not an integer";
            if (x < min_value) return "'" + v + "' is below " + std::to_string(min_value);
            *target = x;
            return "";
          }};
}

Option float_option(std::string name, std::string metavar, std::string help, double* target) {
  return {std::move(name), std::move(metavar), std::move(help),
          [=](const std::string& v) -> std::string {
            char* end = nullptr;
            errno = 0;
            double x = std::strtod(v.c_str(), &end);
            if (v.empty() || errno != 0 || *end != '\0') return "'" + v + "' is not a number";
            *target = x;
            return "";
          }};
}

Option string_option(std::string name, std::string metavar, std::string help,
                     std::string* target) {
  return {std::move(name), std::move(metavar), std::move(help),
          [=](const std::string& v) -> std::string {
            *target = v;
            return "";
          }};
}

Option choice_option(std::string name, std::vector<std::string> choices, std::string help,
                     std::string* target) {
  std::string metavar;
  for (const std::string& c : choices) metavar += (metavar.empty() ? "" : "|") + c;
  return {std::move(name), metavar, std::move(help),
          [=](const std::string& v) -> std::string {
            for (const std::string& c : choices)
              if (c == v) {
                *target = v;
                return "";
              }
            return "'" + v + "' is not one of " + metavar;
          }};
}

Option flag_option(std::string name, std::string help, bool* target) {
  return {std::move(name), "", std::move(help), [=](const std::string&) -> std::string {
            *target = true;
            return "";
          }};
}

bool parse_dtype(const std::string& t, linattn_dtype* out) {
  if (t == "f32" || t == "float32") *out = LINATTN_FLOAT32;
  else if (t == "f16" || t == "float16") *out = LINATTN_FLOAT16;
  else if (t == "bf16" || t == "bfloat16") *out = LINATTN_BFLOAT16;
  else return false;
  return true;
}

const char* short_dtype_name(linattn_dtype dtype) {
  switch (dtype) {
    case LINATTN_FLOAT32: return "f32";
    case LINATTN_FLOAT16: return "f16";
    case LINATTN_BFLOAT16: return "bf16";
    case LINATTN_FLOAT64: return "f64";
    default: return "?";
  }
}

Option dtype_option(std::string name, std::string help, linattn_dtype* target) {
  return {std::move(name), "f32|f16|bf16", std::move(help),
          [=](const std::string& v) -> std::string {
            if (!parse_dtype(v, target)) return "'" + v + "' is not one of f32, f16, bf16";
            return "";
          }};
}

}  // namespace linattn::tool
