// Forces the CPU instruction-set dispatcher (src/cpu/isa.hpp) to one set for a scope, so that a
// test can run every compiled kernel path this CPU supports.
#pragma once

#include "cpu/isa.hpp"

namespace linattn::test {

// Forces `isa` for the scope, restoring the previous choice after; ok() is false when this
// CPU cannot run it (the choice is then unchanged).
class ForcedIsa {
 public:
  explicit ForcedIsa(detail::cpu::Isa isa)
      : prev_(detail::cpu::active_isa()), ok_(detail::cpu::force_isa(isa)) {}
  ~ForcedIsa() { detail::cpu::force_isa(prev_); }
  ForcedIsa(const ForcedIsa&) = delete;
  ForcedIsa& operator=(const ForcedIsa&) = delete;
  bool ok() const { return ok_; }

 private:
  detail::cpu::Isa prev_;
  bool ok_;
};

}  // namespace linattn::test
