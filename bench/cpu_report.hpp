// Output of the CPU benchmark: the console table, JSON and CSV files, and an SVG plot of
// prefill throughput against length with the roofline and an optional peer.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cpu_cases.hpp"
#include "cpu_ceilings.hpp"

namespace linattn::bench {

struct CpuRow {
  CpuCase c;
  CpuResult r;
  double peer_ms = 0;  // 0 when no peer time is known for this case
};

struct CpuRunInfo {
  CpuCeilings ceil;
  int threads = 0;
  std::string isa;   // kernel instruction set the library picked
  std::string date;  // UTC, ISO 8601
};

// Peer times by case name, from a CSV with a header line and columns name,median_ms (extra
// columns ignored). Returns false with a message when the file cannot be read.
bool read_peer_csv(const std::string& path, std::map<std::string, double>* out, std::string* err);

void print_row_header();
void print_row(const CpuRow& row);
bool write_json(const std::string& path, const CpuRunInfo& info, const std::vector<CpuRow>& rows,
                std::string* err);
bool write_csv(const std::string& path, const CpuRunInfo& info, const std::vector<CpuRow>& rows,
               std::string* err);
// Tokens/s of the float32 gated_delta B = 1 prefill rows of the reference shape against T.
bool write_svg(const std::string& path, const CpuRunInfo& info, const std::vector<CpuRow>& rows,
               std::string* err);

}  // namespace linattn::bench
